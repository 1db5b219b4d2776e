"""ROI selection → synthetic pattern → live decoding in a worker, debounced, newest result wins."""

from __future__ import annotations

import numpy as np
from tests.qt.conftest import open_and_wait
from PySide6.QtCore import Qt

from brainview.qt.workers import QtLatestRunner, QtWorkers


def test_the_synthetic_caption_streams_into_its_box(qtbot, window, app_bundle):
    """Perceived latency is the first token: the box shows the caption growing, then the whole of it."""
    open_and_wait(qtbot, window, app_bundle.path)
    view = window.trial_view
    shown = []
    window.live.partial.connect(lambda result: shown.append(view.synthetic_box.text.text()))
    window.roi_panel.roi_items()["V1"].setCheckState(0, Qt.Checked)
    qtbot.waitUntil(lambda: view.synthetic is not None and not view.synthetic.caption_pending, timeout=30000)
    final = view.synthetic.decoded.caption
    streamed = [text for text in shown if text not in ("captioning…", "")]
    assert len(set(streamed)) >= 2 and streamed[-1] == final  # pieces of it before the end
    assert view.synthetic_box.text.text() == final


def test_checking_an_roi_produces_a_synthetic_caption(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    panel, view, session = window.roi_panel, window.trial_view, window.session
    item = panel.roi_items()["V1"]
    item.setCheckState(0, Qt.Checked)  # as a click does
    qtbot.waitUntil(lambda: view.synthetic is not None, timeout=30000)
    # the retrievals come first, the caption after them
    first = view.synthetic
    assert first.caption_pending and first.decoded.caption is None or first.decoded.caption
    qtbot.waitUntil(lambda: not view.synthetic.caption_pending, timeout=30000)
    result = view.synthetic
    assert not result.caption_pending and result.decoded.images.indices.tolist() == first.decoded.images.indices.tolist()
    assert result.decoded.caption and view.synthetic_box.text.text() == result.decoded.caption
    assert "V1" in view.synthetic_box.subtitle.text() and "ROI only" in view.synthetic_box.subtitle.text()
    np.testing.assert_array_equal(session.selection.voxels(), app_bundle.roi_voxels("V1"))
    assert len(view.synthetic_images.thumbnails) == session.k
    assert window.cortex_shows.combo.currentData() == "synthetic"
    expected = session.vertex_values(session.synthetic_pattern(session.selection.voxels()))
    expected[expected == 0] = np.nan  # outside an ROI-only selection the cortex stays uncoloured
    np.testing.assert_allclose(window.cortex_shows.values(), expected)
    # a group checkbox is one undo step; undo clears the synthetic column
    panel.roi_items()["V1"].parent().setCheckState(0, Qt.Checked)
    qtbot.waitUntil(lambda: set(session.selection.atlas_rois) == {"V1", "V2"}, timeout=5000)
    session.selection.undo()
    assert session.selection.atlas_rois == ("V1",)
    assert panel.roi_items()["V2"].checkState(0) == Qt.Unchecked
    session.selection.undo()
    assert view.synthetic is None and window.cortex_shows.combo.currentData() == "trial"


def test_lesion_mode_follows_the_trial(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    panel, view, session = window.roi_panel, window.trial_view, window.session
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("lesion"))
    panel.set_checked(["FFA-1"])
    qtbot.waitUntil(lambda: view.synthetic is not None and view.synthetic.trial == 0, timeout=30000)
    assert "lesion of t0000" in view.synthetic_box.subtitle.text()
    session.set_trial(4)
    qtbot.waitUntil(lambda: view.synthetic.trial == 4, timeout=30000)
    assert view.synthetic.settings.mode == "lesion"


def test_painted_roi_round_trips_through_a_file(qtbot, window, app_bundle, tmp_path):
    open_and_wait(qtbot, window, app_bundle.path)
    selection = window.session.selection
    selection.begin_stroke()
    selection.paint(np.arange(10))
    selection.end_stroke()
    painted = selection.voxels()
    [path] = window.roi_panel.save(tmp_path / "roi.json")
    window.roi_panel.save(tmp_path / "roi.label")
    assert (tmp_path / "lh.roi.label").is_file() and (tmp_path / "rh.roi.label").is_file()
    selection.clear()
    assert window.roi_panel.load(path)
    np.testing.assert_array_equal(selection.voxels(), painted)


def test_only_the_newest_request_is_delivered(qtbot):
    workers = QtWorkers()
    runner = QtLatestRunner(workers, delay_ms=20)
    results = []
    runner.result.connect(results.append)

    def slow(value):
        import time

        time.sleep(0.05)
        return value

    with qtbot.waitSignal(runner.started, timeout=5000):  # with nothing running it starts at once
        runner.submit(slow, 1)
    for value in (2, 3, 4):  # arrive while 1 runs: 2 and 3 are replaced before they start
        runner.submit(slow, value)
    qtbot.waitUntil(lambda: results == [4], timeout=5000)
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert runner.dropped == 1  # the result of 1 came after newer requests
    workers.shutdown()


def test_a_newer_selection_drops_a_running_caption(qtbot):
    """Retrievals arrive as ``partial``; a request submitted meanwhile starts at once (it does not wait
    for the caption) and the old caption gives up or is dropped."""
    import threading

    workers = QtWorkers()
    runner = QtLatestRunner(workers, delay_ms=20)
    partial, results, gave_up = [], [], []
    runner.partial.connect(partial.append)
    runner.result.connect(results.append)
    release = threading.Event()

    def decode(value, superseded):
        yield f"retrievals {value}"
        if value == 1:
            release.wait(5)  # the language model is busy with 1's caption ...
            if superseded():  # ... and checks before painting it
                gave_up.append(value)
                return None
        return f"caption {value}"

    runner.submit_steps(decode, 1)
    qtbot.waitUntil(lambda: partial == ["retrievals 1"], timeout=5000)
    runner.submit_steps(decode, 2)  # a newer selection while 1 is captioning
    qtbot.waitUntil(lambda: results == ["caption 2"], timeout=5000)
    assert partial == ["retrievals 1", "retrievals 2"]
    release.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert results == ["caption 2"] and gave_up == [1]
    workers.shutdown()
