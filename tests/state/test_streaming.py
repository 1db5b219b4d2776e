"""Trial captions and question answers stream token by token (the wait a user feels is the first token's),
end with what the non-streamed call gives, stop within a token once superseded and never leave the model held."""

from __future__ import annotations

from itertools import pairwise

import pytest

from brainview.state.session import Session, finish, load
from brainview.state.streaming import CaptionSoFar
from tests.state.test_session import run_steps


@pytest.fixture(scope="module")
def session(app_bundle):
    session = Session()
    session.set_loaded(load(app_bundle.path, "cpu"))
    session.set_predictions(finish(session.iter_predictions()))
    return session


def _grows(texts: list[str]) -> bool:
    """Each text so far extends the one before it (whitespace aside: a token may start a word)."""
    return all(later.startswith(earlier.strip()) for earlier, later in pairwise(texts))


def _model_is_free(session) -> bool:
    free = session.model_lock.acquire(blocking=False)
    if free:
        session.model_lock.release()
    return free


def test_a_trial_caption_streams_stage_after_stage_and_ends_with_the_batch_caption(session):
    trial = 3
    expected = {stage: session.decoder.captions(session.decoder.tokens_for_trials([trial], stage))[0]
                for stage in session.stages}
    steps, captions = run_steps(session.iter_caption_trial(trial))
    assert captions == {stage: {trial: text} for stage, text in expected.items()}
    assert all(isinstance(step, CaptionSoFar) and step.trial == trial and step.source == session.repeats.source
               and step.generation == session.generation for step in steps)
    stages = [step.stage for step in steps]
    assert stages == sorted(stages) and set(stages) == set(session.stages)  # stage 1 streams, then stage 2
    for stage in session.stages:
        texts = [step.text for step in steps if step.stage == stage]
        assert len(set(texts)) >= 2 and _grows(texts) and texts[-1] == expected[stage]
        # the last step of a stage says it is whole; the others are partial
        assert [step.done for step in steps if step.stage == stage] == [False] * (len(texts) - 1) + [True]
    assert _model_is_free(session)


def test_cached_captions_come_at_once_without_the_model(session, monkeypatch):
    trial = 4
    session.store_captions(session.caption_trial(trial))
    monkeypatch.setattr(session.decoder, "captions", lambda *a, **k: pytest.fail("the model ran for a cached caption"))
    steps, captions = run_steps(session.iter_caption_trial(trial))
    assert steps == [] and captions == {stage: {trial: session.caption(stage, trial)} for stage in session.stages}


def test_a_superseded_trial_caption_stops_within_a_token_and_frees_the_model(session):
    trial, asked = 5, []

    def superseded():  # the caption's stopping rule asks once per generated token (and the lock loop once)
        asked.append(1)
        return len(asked) > 2

    steps, captions = run_steps(session.iter_caption_trial(trial, superseded=superseded))
    assert captions is None and len(steps) <= 2 and {step.stage for step in steps} <= {session.stages[0]}
    assert _model_is_free(session)
    assert session.caption(session.stages[0], trial) is None  # nothing partial is kept


def test_a_worker_stopped_at_a_yield_leaves_the_model_free(session):
    steps = session.iter_caption_trial(6)
    next(steps)  # the first token is on screen; the worker is then dropped (the window closed)
    steps.close()
    assert _model_is_free(session)


def test_answers_stream_one_source_after_the_other(session):
    question, trial, stage = "what colour is it?", 2, session.stage
    history = {"brain": [], "image": []}
    steps, answers = run_steps(session.iter_answer_trial(question, history, trial, stage))
    assert answers == session.answer_trial(question, history, trial, stage)  # the non-streamed answers
    brain = [step["brain"] for step in steps if "image" not in step]
    image = [step["image"] for step in steps if "image" in step]
    assert brain and _grows(brain) and brain[-1] == answers["brain"]
    assert all(step["brain"] == answers["brain"] for step in steps if "image" in step)  # done before the image's
    assert image and _grows(image) and image[-1] == answers["image"]
    assert len(set(brain)) + len(set(image)) >= 3  # pieces of them before the end
    assert _model_is_free(session)
