"""The captioner's CPU precision in the Device menu (remembered), the "Load on the CPU?" question's
answers (retrieval only; loading offers the all-trials pass instead of starting it), and a screenshot
that captions its trial once."""

from __future__ import annotations

from tests.qt.conftest import open_and_wait


def test_the_device_menu_switches_the_cpu_precision_and_remembers_it(qtbot, window, app_bundle, settings):
    from brainview.qt.main_window import QtMainWindow

    open_and_wait(qtbot, window, app_bundle.path)
    assert window.cpu_precision == "int8" and window.session.decoder.adapter.precision == "int8"
    device_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Device")
    float16 = next(a for a in device_menu.actions() if a.data() == "float16")
    with qtbot.waitSignal(window.models_loaded, timeout=60000):
        float16.trigger()
    assert window.session.decoder.adapter.precision == "float16" and window.session.can_caption
    assert [a.data() for a in window.cpu_precision_actions.actions() if a.isChecked()] == ["float16"]
    again = QtMainWindow(device="cpu", settings=settings)  # the next start
    try:
        assert again.cpu_precision == "float16"
    finally:
        again.close()
        again.deleteLater()


def test_retrieval_only_says_captions_are_off_instead_of_waiting(qtbot, window, app_bundle, monkeypatch):
    from brainview.qt import dialogs

    asked = []
    monkeypatch.setattr("brainview.state.loading.CPU_ASK_PARAMETERS", 0)  # the tiny captioner counts as large
    monkeypatch.setattr(dialogs, "ask", lambda parent, title, text, yes, no: asked.append(text) or False)
    open_and_wait(qtbot, window, app_bundle.path)
    assert len(asked) == 1 and "s per token" in asked[0]
    assert not window.session.can_caption
    assert window.trial_view.caption_boxes["stage2"].text.text().startswith("captions are off")
    assert "retrieval-only" in window.trial_view.note.text()


def test_a_screenshot_captions_its_trial_once(qapp, app_bundle, tmp_path, monkeypatch):
    from brainview.qt.app import screenshot
    from brainview.state.session import Session

    calls = []
    real = Session.iter_caption_trial

    def counted(self, *args, **kwargs):
        calls.append(args)
        return (yield from real(self, *args, **kwargs))

    monkeypatch.setattr(Session, "iter_caption_trial", counted)
    screenshot(str(app_bundle.path), str(tmp_path / "shot.png"), size=(1000, 700))
    assert len(calls) == 1


def test_a_large_captioner_on_the_cpu_offers_the_all_trials_pass_instead_of_starting_it(qtbot, window, app_bundle,
                                                                                       monkeypatch):
    from PySide6.QtCore import Qt

    from brainview.qt import dialogs

    monkeypatch.setattr("brainview.state.loading.CPU_ASK_PARAMETERS", 0)  # the tiny captioner counts as large
    monkeypatch.setattr(dialogs, "ask", lambda *args: True)  # "Load on the CPU"
    window.score_on_open = True
    open_and_wait(qtbot, window, app_bundle.path)
    button = window.model_loading.score_button
    assert window.session.can_caption and window.passes.scoring is None
    assert button.isVisible() and f"Caption all {window.session.n_trials} trials (about" in button.text()
    qtbot.mouseClick(button, Qt.LeftButton)
    qtbot.waitUntil(lambda: bool(window.session.scores), timeout=60000)
    assert not button.isVisible()
