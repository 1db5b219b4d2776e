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
    trial = window.exports.export_figure(str(tmp_path / "trial.png"), 1200, 800, what="trial")
    assert Image.open(trial).size == (1200, 800)
