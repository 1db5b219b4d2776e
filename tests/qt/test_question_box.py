"""The question boxes: answers from the brain pattern and the true image tokens in a worker, a short
dialogue per trial, the synthetic card asking the selection, and off with the reason without a captioner."""

from __future__ import annotations

import threading
from itertools import pairwise

from PySide6.QtCore import Qt, QThreadPool

from brainview.decoding.progress import finish
from tests.qt.conftest import open_and_wait


def _ask(qtbot, box, question):
    box.edit.setText(question)
    qtbot.keyClick(box.edit, Qt.Key_Return)


def test_trial_box_answers_in_a_worker_and_keeps_a_dialogue(qtbot, window, app_bundle, monkeypatch):
    open_and_wait(qtbot, window, app_bundle.path)
    session, box = window.session, window.trial_view.questions
    assert box.button.isEnabled() and box.edit.isEnabled() and not box.status.isVisible()
    seen = []
    streamed = session.iter_answer_trial  # the real one

    def original(question, histories, trial, stage):
        return finish(streamed(question, histories, trial, stage))

    def recording(question, histories, trial, stage, superseded):
        seen.append((question, {k: list(v) for k, v in histories.items()}, trial, stage))
        return (yield from streamed(question, histories, trial, stage, superseded))

    monkeypatch.setattr(session, "iter_answer_trial", recording)
    with qtbot.waitSignal(box.answered, timeout=30000) as answered:
        _ask(qtbot, box, "what colour is it?")
        assert box.busy and box.thinking.isVisibleTo(box) and not box.button.isEnabled()
    first = answered.args[0]
    assert set(first) == {"brain", "image"}
    assert first == original("what colour is it?", {}, 0, "stage2")  # trial 0's pattern and true image
    assert not box.busy and box.edit.text() == ""
    assert "what colour is it?" in box.dialogue.text() and "true image" in box.dialogue.text()
    with qtbot.waitSignal(box.answered, timeout=30000):
        _ask(qtbot, box, "where is this?")
    # the second question is asked after the first turn, each source with its own answers
    assert [t.answer for t in seen[1][1]["brain"]] == [first["brain"]]
    assert [t.answer for t in seen[1][1]["image"]] == [first["image"]]
    assert len(box.history) == 2
    for i in range(3):
        with qtbot.waitSignal(box.answered, timeout=30000):
            _ask(qtbot, box, f"question {i}?")
    assert len(box.history) == box.max_turns == 3  # the dialogue is short
    assert len(seen[-1][1]["brain"]) == 3
    window.step_trial(1)
    assert box.history == [] and not box.dialogue.isVisible()  # a new trial, a new dialogue
    with qtbot.waitSignal(box.answered, timeout=30000):
        _ask(qtbot, box, "what is this?")
    assert seen[-1][2:] == (1, "stage2") and seen[-1][1] == {"brain": [], "image": []}


def test_the_window_stays_responsive_while_the_model_thinks(qtbot, window, app_bundle, monkeypatch):
    open_and_wait(qtbot, window, app_bundle.path)
    session, box = window.session, window.trial_view.questions
    release = threading.Event()

    def slow(question, histories, trial, stage, superseded):
        release.wait(20)
        return {"brain": "late", "image": "later"}

    monkeypatch.setattr(session, "iter_answer_trial", slow)
    _ask(qtbot, box, "what colour is it?")
    qtbot.wait(100)  # the event loop runs while the worker waits
    assert box.busy and box.button.text() == "Thinking…"
    window.step_trial(1)  # the user moves on: the answer for trial 0 must not land in trial 1's dialogue
    assert window.session.trial == 1 and not box.busy
    release.set()
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=20000)
    assert box.history == []
    monkeypatch.setattr(session, "iter_answer_trial", lambda q, h, t, s, superseded: {"brain": "red", "image": "blue"})
    with qtbot.waitSignal(box.answered, timeout=30000):
        _ask(qtbot, box, "what colour is it?")
    assert "red" in box.dialogue.text() and "blue" in box.dialogue.text()


def test_a_failure_is_shown_in_the_box(qtbot, window, app_bundle, monkeypatch):
    from brainview.errors import UserError

    open_and_wait(qtbot, window, app_bundle.path)
    box = window.trial_view.questions

    def failing(*args, **kwargs):
        raise UserError("the question is empty")

    monkeypatch.setattr(window.session, "iter_answer_trial", failing)
    with qtbot.waitSignal(box.failed, timeout=30000):
        _ask(qtbot, box, "why?")
    assert "Could not answer: the question is empty" in box.status.text() and not box.busy


def test_synthetic_box_asks_the_selection(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    view, session = window.trial_view, window.session
    box = view.synthetic_questions
    assert not box.button.isEnabled() and "select an ROI" in box.status.text()
    window.roi_panel.set_checked(["FFA-1"])
    qtbot.waitUntil(lambda: view.synthetic is not None and box.button.isEnabled(), timeout=30000)
    with qtbot.waitSignal(box.answered, timeout=30000) as answered:
        _ask(qtbot, box, "what is in this region's preferred scene?")
    expected = session.answer_synthetic("what is in this region's preferred scene?", {},
                                        session.selection.voxels(), session.synthetic, session.trial)
    assert answered.args[0] == expected and set(expected) == {"synthetic"}
    window.roi_panel.set_checked([])
    qtbot.waitUntil(lambda: view.synthetic is None, timeout=30000)
    assert box.history == [] and not box.button.isEnabled()


def test_without_a_captioner_the_boxes_are_off_and_say_why(qtbot, window, retrieval_only_bundle):
    open_and_wait(qtbot, window, retrieval_only_bundle.path)
    for box in (window.trial_view.questions, window.trial_view.synthetic_questions):
        assert not box.button.isEnabled() and not box.edit.isEnabled()
        assert box.status.isVisibleTo(box) and "names no captioner" in box.status.text()


def test_the_answers_stream_into_the_dialogue(qtbot, window, app_bundle):
    """Each answer grows in the dialogue token by token, marked as partial (in italics, with "…", the box
    still thinking), brain first then the true image, and stands as the non-streamed answer at the end."""
    from html import escape

    open_and_wait(qtbot, window, app_bundle.path)
    session, box = window.session, window.trial_view.questions
    shown = []
    box.streamed.connect(lambda answers: shown.append((answers, box.dialogue.text(), box.busy)))
    with qtbot.waitSignal(box.answered, timeout=30000) as answered:
        _ask(qtbot, box, "what colour is it?")
    final = answered.args[0]
    assert final == session.answer_trial("what colour is it?", {}, 0, "stage2")
    brain = [answers["brain"] for answers, _, _ in shown if "image" not in answers]
    image = [answers["image"] for answers, _, _ in shown if "image" in answers]
    assert brain[-1] == final["brain"] and image[-1] == final["image"]
    assert len(set(brain)) + len(set(image)) >= 3  # pieces of the answers before the end
    for texts in (brain, image):
        assert all(later.startswith(earlier.strip()) for earlier, later in pairwise(texts))
    for answers, dialogue, busy in shown:
        assert busy and all(f"<i>{escape(text)}…</i>" in dialogue for text in answers.values())
    assert "…</i>" not in box.dialogue.text() and not box.busy  # whole now
    assert f"<b>{escape(final['brain'])}</b>" in box.dialogue.text()
