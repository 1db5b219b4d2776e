"""The main window: opening bundles, moving through trials, errors and the missing-models path."""

from __future__ import annotations

import numpy as np
from tests.conftest import N_TRIALS
from tests.qt.conftest import open_and_wait
from PySide6.QtCore import Qt

from brainview.decoding.retrieval import rank_of


def test_window_opens_on_a_bundle(qtbot, window, app_bundle, settings):
    window.score_on_open = True
    with qtbot.waitSignal(window.bundle_loaded, timeout=60000):
        window.open_bundle(app_bundle.path)
    # the bundle is browsable before the language models are in
    assert window.trial_view.trial_images.thumbnails[0].is_true
    if not window.session.can_caption:  # models_loaded comes in the same slot that sets the decoder
        assert "Loading the language models" in window.trial_view.note.text()
        with qtbot.waitSignal(window.models_loaded, timeout=60000):
            pass
    assert "test bundle" in window.windowTitle()
    assert window.browser.proxy.rowCount() == N_TRIALS
    assert window.trial_view.title.text().startswith("Trial t0000")
    thumbs = window.trial_view.trial_images.thumbnails
    assert len(thumbs) == window.session.k and thumbs[0].is_true  # planted bundle: the true image is first
    assert window.session.can_caption and not window.trial_view.note.isVisible()
    assert str(app_bundle.path.resolve()) == window.recent_bundles()[0]
    assert "Device: CPU" in window.device_label.text() and "RAM" in window.memory_label.text()
    if window.cortex_view is not None:
        assert window.cortex_view.cortex is window.session.cortex
        image = window.grab_with_cortex()
        assert image.width() > 0
    # captions of the current trial arrive from a worker, then the per-trial scores of all trials
    qtbot.waitUntil(lambda: window.session.caption("stage2", 0) is not None, timeout=30000)
    qtbot.waitUntil(lambda: "rougeL" in window.session.scores["stage2"], timeout=60000)
    box = window.trial_view.caption_boxes["stage2"]
    assert box.text.text() == window.session.caption("stage2", 0)


def test_moving_through_trials_updates_every_panel(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    session, view = window.session, window.trial_view
    first_overlay = window.cortex_shows.values().copy()
    window.browser.table.setFocus()
    qtbot.keyClick(window.browser.table, Qt.Key_Down)
    qtbot.keyClick(window.browser.table, Qt.Key_Down)
    assert session.trial == 2
    assert view.title.text().startswith("Trial t0002")
    assert view.references.text().count("of trial 2") == 2
    assert view.trial_images.thumbnails[0].is_true
    assert int(view.real.images.indices[0]) == 2
    assert rank_of(view.real.image_profile, 2) == 1
    assert not np.allclose(window.cortex_shows.values(), first_overlay, equal_nan=True)  # the cortex shows trial 2
    true_items = [view.trial_texts.item(i).text() for i in range(view.trial_texts.count())]
    assert any("of trial 2" in t and "✓" in t for t in true_items)
    qtbot.waitUntil(lambda: view.caption_boxes["stage1"].text.text() == session.caption("stage1", 2), timeout=30000)
    qtbot.keyClick(window.browser.table, Qt.Key_Up)
    assert session.trial == 1 and view.title.text().startswith("Trial t0001")
    window.step_trial(1)
    assert session.trial == 2
    # the stage selector switches retrievals and the table's score headers
    window.stage_combo.setCurrentIndex(window.stage_combo.findData("stage1"))
    assert session.stage == "stage1" and view.real.stage == "stage1"
    assert view.synthetic is None and view.synthetic_texts.item(0).text() == "no selection"


def test_broken_bundle_shows_a_dialog_and_the_app_stays_usable(qtbot, window, broken_bundle, app_bundle,
                                                               recorded_dialogs):
    with qtbot.waitSignal(window.load_failed, timeout=30000) as failed:
        window.open_bundle(broken_bundle)
    assert recorded_dialogs and recorded_dialogs[0][0] == "critical"
    assert "test/fmri.npy" in recorded_dialogs[0][2] and "voxels" in recorded_dialogs[0][2]
    assert failed.args[0] == recorded_dialogs[0][2]
    assert window.windowTitle() == "brainview"
    open_and_wait(qtbot, window, app_bundle.path)
    assert window.session.n_trials == N_TRIALS


def test_a_missing_path_shows_a_dialog(qtbot, window, tmp_path, recorded_dialogs):
    with qtbot.waitSignal(window.load_failed, timeout=30000):
        window.open_bundle(tmp_path / "nowhere")
    assert "does not exist" in recorded_dialogs[0][2]


def test_missing_language_models_keep_retrieval_and_say_why(qtbot, window, retrieval_only_bundle):
    open_and_wait(qtbot, window, retrieval_only_bundle.path)
    view = window.trial_view
    assert not window.session.can_caption
    assert view.note.isVisible() and "Captions are off" in view.note.text()
    assert "names no captioner" in view.note.text()
    assert view.trial_images.thumbnails[0].is_true
    assert view.trial_texts.count() == window.session.k
    assert view.caption_boxes["stage2"].text.text() == "captions are off: the bundle names no captioner model"
    # ROI decoding still retrieves
    window.roi_panel.set_checked(["FFA-1"])
    qtbot.waitUntil(lambda: view.synthetic is not None, timeout=30000)
    assert view.synthetic.decoded.caption is None and len(view.synthetic_images.thumbnails) == window.session.k


def test_device_change_reloads_the_models(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    with qtbot.waitSignal(window.workers.busy_changed, timeout=30000, check_params_cb=lambda busy: not busy):
        window.set_device("auto")
    assert window.device == "auto" and window.session.can_caption
    assert window.device_combo.currentData() == "auto"


def test_screenshot_writes_a_png(qapp, app_bundle, tmp_path):
    from brainview.qt.app import screenshot

    out = tmp_path / "shot.png"
    screenshot(str(app_bundle.path), str(out), size=(1200, 800), rois=("V1",))
    from PySide6.QtGui import QImage

    image = QImage(str(out))
    assert (image.width(), image.height()) == (1200, 800)


def test_a_trial_not_predicted_yet_is_predicted_in_a_worker(qtbot, window, app_bundle, monkeypatch):
    """Before every trial's tokens are in (a pass of a minute at NSD size), stepping to a new trial predicts
    its tokens in a worker: the view says so, the GUI thread stays free, the retrievals follow."""
    import threading

    from brainview.decoding.brain_model import BrainModel

    release, on_main = threading.Event(), []
    iter_predict, predict = BrainModel.iter_predict, BrainModel.predict

    def held(self, patterns, stage="stage2"):
        if np.atleast_2d(patterns).shape[0] >= app_bundle.n_trials:  # the every-trial pass waits
            release.wait(30)
        return (yield from iter_predict(self, patterns, stage))

    def watched(self, patterns, stage="stage2"):
        on_main.append(threading.current_thread() is threading.main_thread())
        return predict(self, patterns, stage)

    monkeypatch.setattr(BrainModel, "iter_predict", held)
    monkeypatch.setattr(BrainModel, "predict", watched)
    view = window.trial_view
    try:
        with qtbot.waitSignal(window.bundle_loaded, timeout=60000):
            window.open_bundle(app_bundle.path)
        assert not window.session.ranks_ready and view.real is not None  # the first trial came with opening
        for _ in range(3):  # quick steps (the newest trial wins)
            window.step_trial(1)
        assert window.session.trial == 3 and view.title.text().startswith("Trial t0003")
        qtbot.waitUntil(lambda: view.real is not None, timeout=30000)
        assert view.trial_images.thumbnails[0].is_true  # planted bundle: the true image first
        assert on_main and not any(on_main)  # every single-trial prediction ran in a worker
    finally:
        release.set()
    qtbot.waitUntil(lambda: not window.workers.busy, timeout=60000)  # the model loading opening started


def test_thumbnails_are_scaled_once_per_bundle(qtbot, window, app_bundle, tmp_path):
    """Live decoding shows the same top images again and again: each is scaled once, per bundle."""
    from brainview.qt.thumbnails import THUMB, stimulus_thumbnail
    from tests.factories import make_bundle

    open_and_wait(qtbot, window, app_bundle.path)
    first = stimulus_thumbnail(window.session, 3)
    assert stimulus_thumbnail(window.session, 3) is first and stimulus_thumbnail(window.session, 4) is not first
    assert max(first.width(), first.height()) == THUMB
    open_and_wait(qtbot, window, make_bundle(tmp_path / "other", n_trials=6, seed=3).path)
    assert stimulus_thumbnail(window.session, 3) is not first  # another bundle's image 3
