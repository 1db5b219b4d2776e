"""A decode asked for before the language models are in runs again once they are: the synthetic
caption comes after a session is reopened or the subject switched, and the box says why it waits."""

from __future__ import annotations

import threading

from brainview.qt import model_loading
from tests.qt.conftest import open_and_wait


def test_a_reopened_session_captions_its_selection_once_the_models_are_in(qtbot, window, app_bundle, tmp_path,
                                                                       settings, monkeypatch):
    from brainview.qt.main_window import QtMainWindow

    open_and_wait(qtbot, window, app_bundle.path)
    window.roi_panel.set_checked(["V1"])
    path = window.session_io.save(tmp_path / "session.json")

    release = threading.Event()
    real_load = model_loading.load_decoder

    def slow_load(*args, **kwargs):  # the captioner is still loading while the session is restored
        release.wait(30)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(model_loading, "load_decoder", slow_load)
    other = QtMainWindow(device="cpu", settings=settings)
    other.score_on_open = False
    other.show()
    box = other.trial_view.synthetic_box
    try:
        with qtbot.waitSignal(other.bundle_loaded, timeout=60000):
            assert other.session_io.open(path)
        # the selection is decoded at once with retrieval only; the box says what it waits for
        qtbot.waitUntil(lambda: other.trial_view.synthetic is not None, timeout=10000)
        assert other.trial_view.synthetic.decoded.caption is None
        assert "waiting for the language models" in box.text.text()
        with qtbot.waitSignal(other.models_loaded, timeout=60000):
            release.set()
        qtbot.waitUntil(lambda: bool(other.trial_view.synthetic and other.trial_view.synthetic.decoded.caption),
                        timeout=30000)
        assert box.text.text() == other.trial_view.synthetic.decoded.caption
        assert "V1" in box.subtitle.text()
    finally:
        release.set()
        other.close()
        other.deleteLater()


def test_a_caption_box_never_stays_empty_without_a_reason(qtbot, window, retrieval_only_bundle):
    open_and_wait(qtbot, window, retrieval_only_bundle.path)
    window.roi_panel.set_checked(["V1"])
    qtbot.waitUntil(lambda: window.trial_view.synthetic is not None, timeout=10000)
    for box in (*window.trial_view.caption_boxes.values(), window.trial_view.synthetic_box):
        assert box.text.text().startswith("captions are off")
