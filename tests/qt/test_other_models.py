"""Other models' captions in the app: one box per model in the trial view, a column per model and
score in the trial table, "A minus B" as one sort, a file's missing and extra trials shown."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from brainview.errors import UserError

from brainview.qt.trial_browser import TRIAL_ROLE
from tests.conftest import N_TRIALS
from tests.qt.conftest import open_and_wait


def _write_models(tmp_path, session):
    """'good' repeats each trial's first reference except on trial 5 (unrelated words); 'poor' is unrelated
    everywhere except trial 5, where it is exact, misses trial 9 and has one stray key."""
    ids = [session.trial_id(t) for t in range(N_TRIALS)]
    good = {i: session.references(t)[0] for t, i in enumerate(ids)}
    good[ids[5]] = "purple engines hum quietly"
    poor = {i: "purple engines hum quietly" for i in ids}
    poor[ids[5]] = session.references(5)[0]
    del poor[ids[9]]
    poor["not-a-trial"] = "stray"
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "poor.json").write_text(json.dumps(poor))
    return ids


def test_models_shown_beside_the_stages_and_sorted_by_their_difference(qtbot, window, retrieval_only_bundle, tmp_path):
    open_and_wait(qtbot, window, retrieval_only_bundle.path)
    session, panel, browser = window.session, window.other_models, window.browser
    ids = _write_models(tmp_path, session)
    panel.add_file("good", str(tmp_path / "good.json"))
    panel.add_file("poor", str(tmp_path / "poor.json"))
    qtbot.waitUntil(lambda: set(session.other_models.scores) == {"good", "poor"}, timeout=60000)

    assert panel.isVisible() and list(panel.boxes) == ["good", "poor"]
    assert "no caption for 1 trials (" + ids[9] + ")" in panel.problems.text()
    assert "not-a-trial" in panel.problems.text()
    headers = [browser.model.headerData(c, Qt.Horizontal) for c in range(browser.model.columnCount())]
    assert {"good", "good METEOR", "poor", "poor METEOR", "good − poor"} <= set(headers)

    qtbot.mouseClick(panel.sort_button, Qt.LeftButton)
    column = browser.model.column_of("model_diff")
    order = [browser.proxy.index(r, 0).data(TRIAL_ROLE) for r in range(browser.proxy.rowCount())]
    assert order[-1] == 9  # no difference without poor's caption: last
    assert order[-2] == 5  # the one trial where good loses
    assert session.trial == order[0] and order[0] not in (5, 9)
    assert float(browser.proxy.index(0, column).data()) > 0.5
    assert panel.boxes["good"].text.text() == session.references(session.trial)[0]

    # the reverse pair puts trial 5, where poor beats good, first
    panel.first.setCurrentText("poor")
    panel.second.setCurrentText("good")
    qtbot.mouseClick(panel.sort_button, Qt.LeftButton)
    assert session.trial == 5 and "poor − good" in browser.model.headerData(column, Qt.Horizontal)
    assert panel.boxes["poor"].text.text() == session.references(5)[0]
    assert panel.boxes["good"].text.text() == "purple engines hum quietly"

    # worst first and the histogram work per model: good's worst trial is 5
    browser.score_combo.setCurrentIndex(browser.score_combo.findData("model:good"))
    qtbot.mouseClick(browser.worst_button, Qt.LeftButton)
    assert session.trial == 5
    assert "good METEOR" in window.trial_view.plots.histogram.plotItem.titleLabel.text


def test_a_file_matching_no_trial_is_refused(qtbot, window, retrieval_only_bundle, tmp_path):
    open_and_wait(qtbot, window, retrieval_only_bundle.path)
    (tmp_path / "other.json").write_text(json.dumps({"elsewhere-1": "a cat"}))
    with pytest.raises(UserError, match="none of its 1 entries"):
        window.other_models.add_file("other", str(tmp_path / "other.json"))
    assert not window.session.other_models.models and not window.other_models.isVisible()


def test_models_are_kept_in_sessions(qtbot, window, retrieval_only_bundle, tmp_path, settings):
    from brainview.qt.main_window import QtMainWindow
    from brainview.state.session_file import load_session

    open_and_wait(qtbot, window, retrieval_only_bundle.path)
    _write_models(tmp_path, window.session)
    window.other_models.add_file("good", str(tmp_path / "good.json"))
    window.other_models.add_file("poor", str(tmp_path / "poor.json"))
    window.session.other_models.set_pair("poor", "good")
    path = window.session_io.save(tmp_path / "session.json")
    assert [m["name"] for m in load_session(path)["other_models"]["models"]] == ["good", "poor"]

    other = QtMainWindow(device="cpu", settings=settings)
    other.score_on_open = False
    other.show()
    try:
        with qtbot.waitSignal(other.bundle_loaded, timeout=60000):
            assert other.session_io.open(path)
        qtbot.waitUntil(lambda: other.session.other_models.names == ["good", "poor"], timeout=10000)
        assert other.session.other_models.pair == ("poor", "good")
        assert other.session.other_models.model("poor").missing == [other.session.trial_id(9)]
        qtbot.waitUntil(lambda: len(other.session.other_models.scores) == 2, timeout=60000)
    finally:
        other.close()
        other.deleteLater()
    qtbot.waitUntil(lambda: len(window.session.other_models.scores) == 2, timeout=60000)


def test_a_bundle_carrying_captions_shows_them_on_opening(qtbot, window, retrieval_only_bundle, tmp_path):
    import shutil

    root = tmp_path / "carrying"
    shutil.copytree(retrieval_only_bundle.path, root)
    (root / "models").mkdir()
    (root / "models" / "carried.json").write_text(json.dumps({"t0003": "a carried caption"}))
    open_and_wait(qtbot, window, root)
    models = window.session.other_models
    assert models.names == ["carried"] and models.caption("carried", 3) == "a carried caption"
    assert len(models.model("carried").missing) == N_TRIALS - 1
    qtbot.waitUntil(lambda: "carried" in models.scores, timeout=60000)
