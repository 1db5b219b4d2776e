"""Switching bundles is one transaction, and the window survives random use (issue 10).

Bundles of different sizes are switched with a synthetic decoding on screen; a view that fails
mid-switch brings the previous bundle back; closing stops a caption batch in flight within a
second; a few hundred seeded random actions end with no uncaught exception and no leaked thread.
"""

from __future__ import annotations

import random
import shutil
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.qt.conftest import open_and_wait


@pytest.fixture(scope="module")
def other_bundles(tmp_path_factory):
    """Valid bundles unlike the app bundle: fewer trials and voxels, one trial only, no ROIs."""
    from tests.factories import make_bundle

    root = tmp_path_factory.mktemp("switch")
    small = make_bundle(root / "small", n_trials=3, n_voxels=20, subdivisions=1, seed=1)
    single = make_bundle(root / "single", n_trials=1, n_voxels=30, subdivisions=1, seed=2, stages=("stage1",))
    no_rois = root / "no_rois"
    shutil.copytree(make_bundle(root / "no_rois_src", n_trials=5, n_voxels=24, subdivisions=1, seed=3).path, no_rois)
    (no_rois / "cortex" / "rois.json").write_text("{}")
    return {"small": small.path, "single": single.path, "no_rois": no_rois}


def _check_shown(window, path):
    """Every part of the window shows the bundle at ``path``, and works."""
    session = window.session
    assert session.bundle.path == path.absolute()
    assert window.windowTitle() == f"brainview — {session.bundle.name}"
    assert f"/ {session.n_trials}" in window.trial_view.title.text()
    assert window.browser.proxy.rowCount() == session.n_trials
    assert window.cortex_view.cortex is session.cortex and window.cortex_view.selection is session.selection
    assert [window.stage_combo.itemData(i) for i in range(window.stage_combo.count())] == session.stages
    assert window.trial_view.synthetic is None and window.cortex_shows.combo.currentData() == "trial"
    assert window.cortex_shows.values().shape == (session.cortex.n_vertices,)
    window.step_trial(1)
    session.set_trial(session.n_trials - 1)
    session.selection.begin_stroke()
    session.selection.paint([0, 1, 2])  # a brush stroke on the new cortex
    session.selection.end_stroke()
    assert session.selection.painted_vertices().size == 3
    session.selection.clear()


def test_switching_bundles_with_a_synthetic_decoding_on_screen(qtbot, window, app_bundle, other_bundles,
                                                               broken_bundle, recorded_dialogs):
    open_and_wait(qtbot, window, app_bundle.path)
    session = window.session
    session.set_trial(session.n_trials - 1)
    window.roi_panel.roi_items()["V1"].setCheckState(0, Qt.Checked)
    qtbot.waitUntil(lambda: window.trial_view.synthetic is not None, timeout=30000)
    for name in ("small", "single", "no_rois"):
        window.roi_panel.roi_items() and next(iter(window.roi_panel.roi_items().values())).setCheckState(0, Qt.Checked)
        open_and_wait(qtbot, window, other_bundles[name])
        _check_shown(window, other_bundles[name])
    assert not window.roi_panel.roi_items() and not session.can_caption
    # a broken bundle is refused with a dialog, and the one on screen stays in place
    with qtbot.waitSignal(window.load_failed, timeout=30000):
        window.open_bundle(broken_bundle)
    assert [d[1] for d in recorded_dialogs] == ["Cannot open the bundle"]
    _check_shown(window, other_bundles["no_rois"])
    open_and_wait(qtbot, window, app_bundle.path)
    _check_shown(window, app_bundle.path)
    qtbot.waitUntil(lambda: session.can_caption, timeout=30000)
    assert len(recorded_dialogs) == 1


def test_a_view_that_cannot_switch_leaves_the_previous_bundle(qtbot, window, app_bundle, other_bundles,
                                                              recorded_dialogs, monkeypatch):
    open_and_wait(qtbot, window, other_bundles["small"])
    real_set_cortex = window.cortex_view.set_cortex

    def failing(cortex):
        if cortex is not None and cortex.n_voxels == 30:  # the single-trial bundle's
            raise RuntimeError("the view cannot show this cortex")
        real_set_cortex(cortex)

    monkeypatch.setattr(window.cortex_view, "set_cortex", failing)
    with qtbot.waitSignal(window.load_failed, timeout=30000):
        window.open_bundle(other_bundles["single"])
    assert "cannot show this cortex" in recorded_dialogs[-1][2]
    _check_shown(window, other_bundles["small"])


@pytest.fixture
def endless_captioning(monkeypatch):
    """Every caption batch generates again and again until it is stopped: a batch is in flight whenever
    the test looks, however fast this machine generates (the tiny captioner's batches take ~0.1 s)."""
    from brainview.decoding.blip2 import Blip2Adapter

    generate_once = Blip2Adapter.caption

    def caption(self, *args, stop=None, **kwargs):
        while True:  # each round is a real generation, which raises Cancelled within a token of stop()
            generate_once(self, *args, stop=stop, **kwargs)

    monkeypatch.setattr(Blip2Adapter, "caption", caption)


def test_closing_stops_a_caption_batch_in_flight_within_a_second(qtbot, qapp, settings, app_bundle,
                                                                 endless_captioning):
    from brainview.qt.main_window import QtMainWindow

    win = QtMainWindow(device="cpu", settings=settings)
    win.session.score_metrics = ("rougeL",)
    win.score_on_open = True  # every trial is captioned in the background as soon as the models are in
    win.show()
    open_and_wait(qtbot, win, app_bundle.path)
    qtbot.waitUntil(lambda: win.passes.scoring is not None and win.passes.scoring in win.workers._running)
    qtbot.wait(200)  # the scoring pass is in generate now
    assert win.passes.scoring in win.workers._running
    started = time.perf_counter()
    win.close()
    closed = time.perf_counter() - started
    win.deleteLater()
    print(f"closing with a caption batch in flight: {closed:.3f} s")
    assert closed < 1.0, f"closing took {closed:.2f} s"


ACTIONS = ("trial", "step", "stage", "k", "roi", "paint", "undo", "redo", "mode", "overlay", "worst", "open",
           "wait")


def test_random_use(qtbot, qapp, settings, app_bundle, other_bundles, broken_bundle, recorded_dialogs):
    """300 seeded random actions: no uncaught exception (pytest-qt fails on one), only expected dialogs,
    no worker left behind (the autouse fixture), and a close within a second."""
    from brainview.qt.main_window import QtMainWindow

    rng = random.Random(10)
    win = QtMainWindow(device="cpu", settings=settings)
    win.session.score_metrics = ("rougeL",)
    win.score_on_open = False
    win.resize(1200, 800)
    win.show()
    open_and_wait(qtbot, win, app_bundle.path)
    paths = [app_bundle.path, *other_bundles.values(), broken_bundle]
    session, counts, expected_dialogs = win.session, dict.fromkeys(ACTIONS, 0), 0
    for _ in range(300):
        action = rng.choices(ACTIONS, weights=(6, 4, 2, 2, 6, 5, 3, 2, 2, 2, 1, 3, 4))[0]
        counts[action] += 1
        if action == "trial":
            session.set_trial(rng.randrange(session.n_trials))
        elif action == "step":
            win.step_trial(rng.choice((-1, 1)))
        elif action == "stage":
            win.stage_combo.setCurrentIndex(rng.randrange(win.stage_combo.count()))
        elif action == "k":
            win.trial_view.k_spin.setValue(rng.randint(1, 20))
        elif action == "roi" and win.roi_panel.roi_items():
            item = rng.choice(list(win.roi_panel.roi_items().values()))
            item.setCheckState(0, Qt.Unchecked if item.checkState(0) == Qt.Checked else Qt.Checked)
        elif action == "paint":
            session.selection.begin_stroke()
            for _ in range(rng.randint(1, 4)):
                session.selection.paint(rng.sample(range(session.cortex.n_vertices), 5), erase=rng.random() < 0.2)
            session.selection.end_stroke()
        elif action == "undo":
            session.selection.undo()
        elif action == "redo":
            session.selection.redo()
        elif action == "mode":
            win.roi_panel.mode_combo.setCurrentIndex(rng.randrange(win.roi_panel.mode_combo.count()))
        elif action == "overlay":
            win.cortex_shows.choose(rng.choice(("trial", "synthetic")))
        elif action == "worst":
            win.browser.worst_first()
        elif action == "open":
            path = rng.choice(paths)
            signal = win.load_failed if path == broken_bundle else win.bundle_loaded
            expected_dialogs += path == broken_bundle
            with qtbot.waitSignal(signal, timeout=30000):
                win.open_bundle(path)
        qtbot.wait(rng.choice((0, 0, 5, 30)) if action != "wait" else 150)
    assert [d[1] for d in recorded_dialogs] == ["Cannot open the bundle"] * expected_dialogs
    started = time.perf_counter()
    win.close()
    closed = time.perf_counter() - started
    win.deleteLater()
    print(f"random use: {counts}, close {closed:.3f} s")
    assert closed < 1.0
    assert np.isfinite(closed)
