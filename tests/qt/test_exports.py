"""Exports from the window: every table as CSV (menu and right-click), figures at a multiple of the
screen size with the view's colour range."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from tests.qt.conftest import open_and_wait


def test_tables_from_the_window(qtbot, window, app_bundle, tmp_path):
    open_and_wait(qtbot, window, app_bundle.path)
    exports = window.exports
    assert exports.trials_action in window.browser.table.actions()  # right-click on the trial table
    saved = []
    with qtbot.waitSignal(window.workers.busy_changed, timeout=60000, check_params_cb=lambda busy: not busy):
        exports.save_trials(str(tmp_path / "trials.csv"), on_saved=saved.append)
    frame = pd.read_csv(saved[0])
    assert len(frame) == app_bundle.n_trials and frame["image_rank_s2"].dtype == np.int64
    window.session.set_trial(3)
    frame = pd.read_csv(exports.save_retrieval(str(tmp_path / "retrieval.csv")))
    assert (frame["kind"] == "image").sum() == window.session.k
    saved = []
    with qtbot.waitSignal(window.workers.busy_changed, timeout=60000, check_params_cb=lambda busy: not busy):
        exports.save_rois(str(tmp_path / "rois.csv"), on_saved=saved.append)
    frame = pd.read_csv(saved[0])
    assert frame["roi"].tolist() == list(app_bundle.rois) and "caption_s2" in frame


def test_figure_at_three_times_the_screen_size(qtbot, window, app_bundle, tmp_path):
    open_and_wait(qtbot, window, app_bundle.path)
    view = window.cortex_view
    view.update_overlay_style(vmax=1.5)
    width, height = 3 * view.width(), 3 * view.height()
    out = window.exports.export_figure(str(tmp_path / "figure.svg"), width, height)
    assert 'width="%gpt"' % (width * 0.72) in out.read_text()[:2000]
    png = window.exports.export_figure(str(tmp_path / "figure.png"), width, height)
    assert Image.open(png).size == (width, height)
    import re

    texts = [t.strip() for t in re.findall(r"<text[^>]*>([^<]*)", out.read_text())]
    assert "1.5" in texts and "-1.5" in texts  # the range the user chose, as drawn
    saved = []
    window.exports.export_figure(str(tmp_path / "trial.png"), 1200, 800, what="trial", on_saved=saved.append)
    qtbot.waitUntil(lambda: bool(saved), timeout=60000)  # at once, or once the prediction worker has every rank
    assert Image.open(saved[0]).size == (1200, 800)


def test_exports_that_need_every_rank_wait_for_the_prediction_worker(qtbot, window, app_bundle, tmp_path,
                                                                     monkeypatch):
    """Before every trial is ranked, the trial table and the trial figure wait for the window's prediction
    worker: the whole-dataset pass never runs on the GUI thread, and it runs once, not once per export."""
    import threading

    from brainview.decoding.brain_model import BrainModel

    release = threading.Event()
    full_passes = []
    original = BrainModel.iter_predict

    def watched(self, patterns, stage="stage2"):
        if np.atleast_2d(patterns).shape[0] >= app_bundle.n_trials:  # every trial: the pass the ranks need
            full_passes.append((stage, threading.current_thread() is threading.main_thread()))
            release.wait(30)
        return (yield from original(self, patterns, stage))

    monkeypatch.setattr(BrainModel, "iter_predict", watched)
    try:
        with qtbot.waitSignal(window.bundle_loaded, timeout=60000):
            window.open_bundle(app_bundle.path)
        assert not window.session.ranks_ready
        table, figure = [], []
        window.exports.save_trials(str(tmp_path / "trials.csv"), on_saved=table.append)
        window.exports.export_figure(str(tmp_path / "trial.png"), 800, 500, what="trial", on_saved=figure.append)
        qtbot.wait(200)  # the GUI thread stays free meanwhile: events run, nothing is written yet
        assert table == [] and figure == [] and not (tmp_path / "trials.csv").exists()
    finally:
        release.set()
    qtbot.waitUntil(lambda: bool(table and figure), timeout=60000)
    assert full_passes == [("stage1", False), ("stage2", False)]
    frame = pd.read_csv(table[0])
    assert len(frame) == app_bundle.n_trials and (frame["image_rank_s2"] >= 1).all()
    assert Image.open(figure[0]).size == (800, 500)
    # let the model loading that opening started finish before the window closes
    qtbot.waitUntil(lambda: not window.workers.busy, timeout=60000)
