"""The shown trial's captions stream into their boxes token by token (stage 1, then stage 2), marked as partial
until they are whole; stepping to another trial stops the old caption within a token and its text never
reaches the new trial's boxes; closing the window mid-caption leaves no thread behind."""

from __future__ import annotations

import threading
from itertools import pairwise

from PySide6.QtCore import QThreadPool

from brainview.errors import Cancelled
from tests.qt.conftest import open_and_wait


def _captions_done(qtbot, window) -> None:
    qtbot.waitUntil(lambda: not window.trial_captioner.busy, timeout=30000)


def _stream_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "brainview-stream" and t.is_alive()]


def test_the_trial_caption_streams_into_its_boxes(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    session, view = window.session, window.trial_view
    _captions_done(qtbot, window)  # trial 0's
    trial = 3
    decoder = session.decoder
    expected = {stage: decoder.captions(decoder.tokens_for_trials([trial], stage))[0] for stage in session.stages}
    shown = []  # after each step the view took: (stage streaming, whole yet, {stage: (box text, box title)})
    window.trial_captioner.partial.connect(lambda step: shown.append(
        (step.stage, step.done, {s: (b.text.text(), b.title.text()) for s, b in view.caption_boxes.items()})))
    session.set_trial(trial)
    qtbot.waitUntil(lambda: all(session.caption(s, trial) is not None for s in session.stages), timeout=30000)
    _captions_done(qtbot, window)
    for stage in session.stages:
        texts = [boxes[stage][0] for streaming, _, boxes in shown if streaming == stage]
        assert len(set(texts)) >= 2, texts  # pieces of the caption before the end
        assert all(later.startswith(earlier.strip()) for earlier, later in pairwise(texts))  # growing
        assert texts[-1] == expected[stage]  # the streamed caption is the non-streamed one
        # partial while it streams: the title says so (the synthetic box's pending look), until it is whole
        assert all(boxes[stage][1].endswith("· decoding…") != done for streaming, done, boxes in shown
                   if streaming == stage)
        box = view.caption_boxes[stage]
        assert box.text.text() == expected[stage] == session.caption(stage, trial)  # stored as before
        assert not box.title.text().endswith("decoding…")
    first, second = session.stages
    # stage 1 streams first: while stage 2 streams, stage 1's box shows its whole caption, no longer partial
    assert all(boxes[first] == (expected[first], view.caption_boxes[first].name)
               for streaming, _, boxes in shown if streaming == second)


def _gate_the_next_caption(monkeypatch, decoder):
    """The next caption stops after its first token until ``gate`` is set (a slow language model, without
    sleeping); records what it reports after the gate opens and how it ended."""
    real = decoder.captions
    gate, held = threading.Event(), threading.Event()
    record = {"calls": 0, "after_gate": [], "ended": None}

    def gated(tokens, *args, on_text=None, **kwargs):
        record["calls"] += 1
        if record["calls"] > 1 or on_text is None:
            return real(tokens, *args, on_text=on_text, **kwargs)

        def slowed(text):
            on_text(text)
            if gate.is_set():
                record["after_gate"].append(text)
            else:
                held.set()
                gate.wait(20)

        try:
            result = real(tokens, *args, on_text=slowed, **kwargs)
        except Cancelled as exc:
            record["ended"] = exc
            raise
        record["ended"] = result
        return result

    monkeypatch.setattr(decoder, "captions", gated)
    return gate, held, record


def test_stepping_to_another_trial_stops_the_old_caption_and_never_shows_it(qtbot, window, app_bundle, monkeypatch):
    open_and_wait(qtbot, window, app_bundle.path)
    session, view = window.session, window.trial_view
    _captions_done(qtbot, window)
    gate, held, record = _gate_the_next_caption(monkeypatch, session.decoder)
    steps = []
    window.trial_captioner.partial.connect(lambda step: steps.append(step))
    box_texts = []  # (trial shown, stage, text) every time a caption box is written
    for stage, box in view.caption_boxes.items():
        def recording(text, placeholder="", original=box.set_text, stage=stage):
            box_texts.append((session.trial, stage, text))
            original(text, placeholder)
        monkeypatch.setattr(box, "set_text", recording)
    first = session.stages[0]
    try:
        session.set_trial(1)
        qtbot.waitUntil(lambda: held.is_set() and any(step.trial == 1 for step in steps), timeout=30000)
        old = {step.text for step in steps if step.trial == 1}
        assert view.caption_boxes[first].text.text() in old  # trial 1's caption, part-way
        stepped_at, delivered_at = len(box_texts), len(steps)
        session.set_trial(2)  # the user moves on while trial 1's caption is mid-token
        assert view.caption_boxes[first].text.text() == "decoding…"
    finally:
        gate.set()  # the token in flight completes
    qtbot.waitUntil(lambda: all(session.caption(s, 2) is not None for s in session.stages), timeout=30000)
    _captions_done(qtbot, window)
    # stopped within a token: the one being generated when the user stepped on completes, no other follows
    assert isinstance(record["ended"], Cancelled) and len(record["after_gate"]) <= 1
    assert all(step.trial == 2 for step in steps[delivered_at:])  # nothing of trial 1 after the step
    new = {(step.stage, step.text) for step in steps[delivered_at:]}
    for trial, stage, text in box_texts[stepped_at:]:
        assert trial == 2 and (text is None or (stage, text) in new or text == session.caption(stage, 2))
    assert view.caption_boxes[first].text.text() == session.caption(first, 2)
    assert session.caption(first, 1) is None  # the stopped caption was not kept, not even in part
    model = session.model_lock
    assert model.acquire(blocking=False)
    model.release()


def test_closing_the_window_mid_caption_leaves_no_thread_running(qtbot, window, app_bundle, monkeypatch):
    open_and_wait(qtbot, window, app_bundle.path)
    session = window.session
    _captions_done(qtbot, window)
    gate, held, record = _gate_the_next_caption(monkeypatch, session.decoder)
    session.set_trial(1)
    qtbot.waitUntil(held.is_set, timeout=30000)
    window.close()
    gate.set()
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0 and not _stream_threads(),
                    timeout=20000)
    assert isinstance(record["ended"], Cancelled) and len(record["after_gate"]) <= 1  # stopped within a token
    assert session.model_lock.acquire(blocking=False)
    session.model_lock.release()
