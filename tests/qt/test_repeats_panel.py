"""The Repeats panel: the current trial decoded from the mean and from each single repeat, how well the
repeats agree, and the choice (driven from the keyboard) whose top images are shown."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.qt.conftest import open_and_wait


@pytest.fixture(scope="module")
def repeats_bundle(tmp_path_factory):
    from tests.conftest import BUNDLE_SHAPE
    from tests.factories import make_captioned_bundle

    from tests.factories import renoise_repeats

    bundle = make_captioned_bundle(tmp_path_factory.mktemp("repeats_app"), max_new_tokens=6, repeats=3,
                                   **{k: v for k, v in BUNDLE_SHAPE.items()})
    renoise_repeats(bundle.path, 3.0)  # single repeats that rank some true images below first
    return bundle


def _wait_for_rows(qtbot, panel, rows):
    qtbot.waitUntil(lambda: panel.result is not None and panel.table.rowCount() == rows, timeout=30000)


def test_each_repeat_decodes_beside_the_mean(qtbot, window, repeats_bundle, tmp_path):
    open_and_wait(qtbot, window, repeats_bundle.path)
    panel = window.repeats_panel
    window.left_tabs.setCurrentWidget(panel)
    _wait_for_rows(qtbot, panel, 4)  # trial 0: the mean and three repeats
    assert [panel.table.item(r, 0).text() for r in range(4)] == ["mean of all", "repeat 1", "repeat 2", "repeat 3"]
    assert all(panel.table.item(r, 3).text() for r in range(4))  # a caption from each pattern
    assert "Do single repeats agree?" in panel.agreement.text()
    assert [panel.choice.itemText(i) for i in range(panel.choice.count())] == [
        "mean of all", "repeat 1", "repeat 2", "repeat 3"]
    # the choice, from the keyboard: repeat 2's images are the ones shown
    panel.choice.setFocus()
    qtbot.keyClick(panel.choice, Qt.Key_Down)
    qtbot.keyClick(panel.choice, Qt.Key_Down)
    assert panel.chosen == 2
    chosen = panel.result.row(2)
    assert panel.table.item(2, 0).background().color().name() == "#34506e"
    shown = [t.toolTip().splitlines()[0] for t in panel.images.thumbnails[:len(chosen.decoded.images.indices)]]
    assert shown == [f"trial {window.session.trial_id(int(i))}" for i in chosen.decoded.images.indices]
    assert chosen.decoded.images.indices[0] == chosen.top_image
    # a trial with two repeats lists two; the choice of a third says it has none
    window.session.set_trial(2)
    _wait_for_rows(qtbot, panel, 3)
    qtbot.keyClick(panel.choice, Qt.Key_Down)
    assert panel.chosen == 3 and "no repeat 3" in panel.images.message.text()
    panel.grab().save(str(tmp_path / "repeats.png"))


def test_a_bundle_with_only_the_mean_says_so(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    panel = window.repeats_panel
    assert panel.choice.count() == 1 and "only each image's mean" in panel.agreement.text()


def _table_ranks(window):
    """The trial table's rank column of the current stage, by trial."""
    model = window.browser.model
    column = model.score_column("image_rank")
    return [int(model.data(model.index(row, column))) for row in range(model.rowCount())]


def test_choosing_a_repeat_drives_the_trial_view_and_the_failure_hunt(qtbot, window, repeats_bundle):
    import numpy as np

    from brainview.decoding.retrieval import image_scores, rank_of

    open_and_wait(qtbot, window, repeats_bundle.path)
    session, view, panel = window.session, window.trial_view, window.repeats_panel
    qtbot.waitUntil(lambda: session.ranks_ready, timeout=30000)
    mean_ranks = _table_ranks(window)
    # what repeat 1 decodes to, computed here trial by trial
    decoder, stage = session.decoder, session.stage
    tokens = decoder.model.predict(np.asarray(session.bundle.fmri_repeats[:, 0], dtype=np.float32), stage=stage)
    similarity = image_scores(tokens, decoder.unit_targets, unit_targets=True)
    repeat_ranks = [rank_of(row, t) for t, row in enumerate(similarity)]
    assert repeat_ranks != mean_ranks
    trial = int(np.argmax(np.array(repeat_ranks) != np.array(mean_ranks)))
    session.set_trial(trial)
    qtbot.waitUntil(lambda: view.caption_boxes["stage2"].text.text() == session.captions["stage2"].get(trial),
                    timeout=30000)
    assert f"true image rank {mean_ranks[trial]}" in view.images_title.text()
    # repeat 1, from the keyboard
    panel.choice.setFocus()
    qtbot.keyClick(panel.choice, Qt.Key_Down)
    qtbot.waitUntil(lambda: session.repeats.repeat == 1, timeout=30000)
    assert "repeat 1" in view.title.text()
    assert f"true image rank {repeat_ranks[trial]}" in view.images_title.text()
    assert _table_ranks(window) == repeat_ranks
    caption = decoder.captions(tokens[[trial]].astype(np.float32))[0]
    qtbot.waitUntil(lambda: view.caption_boxes["stage2"].text.text() == caption, timeout=30000)
    assert "decode repeat 1" in panel.status.text()
    # the failure hunt: worst first goes to the trial whose repeat 1 ranks its image lowest
    qtbot.mouseClick(window.browser.worst_button, Qt.LeftButton)
    assert repeat_ranks[session.trial] == max(repeat_ranks)
    # back to the mean: its ranks again, at once
    qtbot.keyClick(panel.choice, Qt.Key_Up)
    assert session.repeats.repeat is None and _table_ranks(window) == mean_ranks
    assert "repeat" not in view.title.text()
