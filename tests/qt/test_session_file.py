"""Session files: every field saved and restored, a moved or changed bundle asks for its new place,
atomic writes, bad files give one message; and the desktop conventions around them (preferences,
drag and drop, shortcuts, About, HiDPI picks)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from brainview.errors import UserError
from brainview.state.session_file import bundle_problem, load_session
from tests.qt.conftest import open_and_wait


def _set_up(window):
    """Change every field a session holds away from its default."""
    session, view = window.session, window.cortex_view
    session.set_trial(5)
    session.set_stage("stage1")
    session.set_k(3)
    session.set_synthetic(mode="boost", factor=2.5, scale=7.0, stage="stage1")
    session.selection.set_atlas_rois(["V1"])
    session.selection.paint(np.arange(10, 20))
    session.selection.paint(np.arange(15, 18), erase=True)
    view.set_surface("pial")
    view.set_view("medial")
    view.set_brush_radius(7.5)
    view.update_overlay_style(cmap="viridis", threshold=0.2, vmax=1.7, symmetric=True)
    window.cortex_shows.choose("trial")
    window.splitter.setSizes([300, 1100])
    window.browser.table.sortByColumn(window.browser.model.score_column("image_rank"), Qt.DescendingOrder)
    window.browser.filter_edit.setText("caption")
    # the panels (the session's "interface" group)
    scores = window.session.available_scores()
    window.browser.score_combo.setCurrentIndex(window.browser.score_combo.findData(scores[-1]))
    window.show_panel(window.language_panel)
    window.language_panel.tabs.setCurrentIndex(2)
    window.language_panel.concept_edit.setText("a face")
    window.subjects_dock.show()
    window.overlay_layers.update("concept", threshold=0.3, cmap="inferno")  # each overlay its own settings
    window.overlay_layers.update("outlines", visible=False)
    window.overlay_layers.update("selection", opacity=0.35)


def test_save_and_restore_every_field(qtbot, window, app_bundle, tmp_path, settings):
    from brainview.qt.main_window import QtMainWindow

    open_and_wait(qtbot, window, app_bundle.path)
    _set_up(window)
    saved = window.session_io.capture()
    path = window.session_io.save(tmp_path / "session.json")
    assert not list(tmp_path.glob(".session.json.*"))  # the temporary file is gone
    document = load_session(path)
    assert document["trial"] == app_bundle.trials[5]["id"] and document["selection"]["rois"] == ["V1"]

    overlays = saved["interface"].pop("overlays")
    assert saved["interface"] == {"score": window.session.available_scores()[-1], "search_phrase": "",
                                  "concept_phrase": "a face", "left_tab": 1, "language_tab": 2,
                                  "subjects_dock": True}
    saved["interface"]["overlays"] = overlays
    assert overlays["concept"]["threshold"] == 0.3 and overlays["trial"]["threshold"] == 0.2
    other = QtMainWindow(device="cpu", settings=settings)
    other.score_on_open = False
    other.resize(1200, 800)
    other.show()
    try:
        with qtbot.waitSignal(other.bundle_loaded, timeout=60000):
            assert other.session_io.open(path)
        qtbot.waitUntil(lambda: other.session.trial == 5, timeout=10000)
        restored = other.session_io.capture()
        assert restored["interface"] == saved["interface"]
        scene = other.cortex_view.scenes["lh"]
        assert not scene.show_outlines and scene.fill_alpha == 0.35  # drawn as restored, not only stored
        assert other.size().toTuple() == (1200, 800)  # opening a session never resizes the window
        assert other.recent_bundles()[0] == str(path.resolve())  # sessions are in File → Open recent
        assert other.roi_panel.checked() == ["V1"]
        assert saved["browser"] == {"sort": ["rank", "stage1"], "descending": True, "filter": "caption"}
        for key in ("bundle", "trial", "stage", "k", "selection", "synthetic", "cortex", "overlay", "browser"):
            assert restored[key] == saved[key], key
        assert abs(other.splitter.sizes()[0] - window.splitter.sizes()[0]) <= 10  # the window manager may round
        assert other.session.selection.voxels().tolist() == window.session.selection.voxels().tolist()
        assert other.cortex_view.overlay_style["cmap"] == "viridis"
    finally:
        other.close()
        other.deleteLater()


def test_a_moved_bundle_asks_for_its_new_place(qtbot, window, retrieval_only_bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(retrieval_only_bundle.path, copy)
    open_and_wait(qtbot, window, copy)
    window.session.set_trial(2)
    path = window.session_io.save(tmp_path / "s.json")
    moved = tmp_path / "moved"
    copy.rename(moved)
    asked = []
    window.session_io.locate_bundle = lambda problem: asked.append(problem) or str(moved)
    window.session.set_trial(0)
    with qtbot.waitSignal(window.bundle_loaded, timeout=60000):
        assert window.session_io.open(path)
    assert "no bundle at" in asked[0]
    qtbot.waitUntil(lambda: window.session.trial == 2, timeout=10000)


def test_a_changed_bundle_is_detected(retrieval_only_bundle, tmp_path):
    from brainview.state.session_file import bundle_fingerprint

    copy = tmp_path / "bundle"
    shutil.copytree(retrieval_only_bundle.path, copy)
    recorded = bundle_fingerprint(copy)
    assert bundle_problem(recorded) is None
    with open(copy / "test" / "captions.json", "a") as handle:
        handle.write(" ")
    assert "changed since the session was saved (test/captions.json)" in bundle_problem(recorded)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "name": "another"}))
    assert "is 'another'" in bundle_problem(recorded)


def test_cancelling_the_question_opens_nothing(qtbot, window, retrieval_only_bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(retrieval_only_bundle.path, copy)
    open_and_wait(qtbot, window, copy)
    path = window.session_io.save(tmp_path / "s.json")
    shutil.rmtree(copy)
    window.session_io.locate_bundle = lambda problem: None
    assert not window.session_io.open(path)


@pytest.mark.parametrize("content, message", [
    ("{", "is not valid JSON"), ('{"format": "x"}', "not a brainview session file"),
    ('{"format": "brainview-session", "version": 9}', "version 9"),
])
def test_bad_session_files(tmp_path, content, message, capsys):
    from brainview.cli import main

    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        load_session(path)
    assert main(["open", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_preferences_persist(qtbot, window, app_bundle, settings):
    from brainview.qt.main_window import QtMainWindow

    open_and_wait(qtbot, window, app_bundle.path)
    window.cortex_view.update_overlay_style(cmap="inferno")
    window.cortex_view.set_brush_radius(9.0)
    window.splitter.setSizes([420, 980])
    left, size = window.splitter.sizes()[0], window.size()
    window.set_device("cpu")
    window.close()
    again = QtMainWindow(settings=settings)
    again.show()
    try:
        assert again.device == "cpu"
        assert again.cortex_view.overlay_style["cmap"] == "inferno" and again.cortex_view.brush_radius == 9.0
        # the offscreen screen is smaller than the saved window, which Qt clamps; at the saved size the
        # splitters come back exactly
        again.resize(size)
        again.preferences.restore_splitters()
        assert again.splitter.sizes()[0] == left
        assert again.recent_bundles()[0] == str(app_bundle.path.resolve())
    finally:
        again.close()
        again.deleteLater()


def test_a_session_saved_before_any_score_is_ready_opens_again(qtbot, window, app_bundle, tmp_path):
    """Scores fill the trial table's score list only once computed: a session saved before then (the
    score is None) must open again, not be refused as a file the app itself wrote wrong."""
    open_and_wait(qtbot, window, app_bundle.path)
    window.browser.score_combo.clear()  # as before the first scores arrive
    window.session.set_trial(4)
    path = window.session_io.save(tmp_path / "early.json")
    assert load_session(path)["interface"]["score"] is None
    window.session.set_trial(0)
    assert window.session_io.open(path) and window.session.trial == 4


def test_drop_a_bundle_folder_or_a_session(qtbot, window, app_bundle, tmp_path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(app_bundle.path))])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(window.bundle_loaded, timeout=60000):
        window.dropEvent(event)
    assert window.session.bundle.path == app_bundle.path
    window.session.set_trial(7)
    session_path = window.session_io.save(tmp_path / "dropped.json")
    window.session.set_trial(1)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(session_path))])
    window.dropEvent(QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier))
    assert window.session.trial == 7  # same bundle: restored at once
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "notes.txt"))])
    assert window._dropped_path(QDropEvent(QPointF(1, 1), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)) is None


def test_shortcut_table_and_about(window):
    from brainview.qt.help import QtShortcutTable, about_text, shortcut_rows

    rows = dict((what, keys) for keys, what in shortcut_rows(window))
    assert "Save session" in rows and "Next trial" in rows and "Open bundle" in rows
    table = QtShortcutTable(window)
    assert table.table.rowCount() == len(shortcut_rows(window))
    table.deleteLater()
    text = about_text("cpu")
    for name in ("brainview", "torch", "transformers", "vtk", "Qt", "device"):
        assert name in text


def test_picks_use_the_windows_pixel_ratio(qtbot, window, app_bundle, monkeypatch):
    """On a 2x screen a widget position maps to twice the render-window pixels, from the window's own
    ratio, whatever screen the cursor is on."""
    open_and_wait(qtbot, window, app_bundle.path)
    view = window.cortex_view
    height = view._vtk.height()
    assert view.display_position(QPoint(10, 20)) == (10, height - 21)
    monkeypatch.setattr(type(view._vtk), "devicePixelRatioF", lambda self: 2.0)
    assert view.display_position(QPoint(10, 20)) == (20, 2 * (height - 21))
    assert view._vtk._getPixelRatio() == 2.0  # also what the render window is sized with
