"""Text that streams into its box token by token: the shown trial's captions, the answers to a question and
the synthetic caption. The wait a user feels is the first token's.

Each is a progress generator for a worker: it yields the text so far after each generated token and returns
the whole of it. The language-model call runs on a helper thread (:func:`~brainview.decoding.progress.iter_streamed`)
that takes the model as foreground itself, so a worker stopped at a yield never leaves the model held; a
``superseded()`` that turns True (the user moved on) stops it within a token and the generator returns None.
Qt-free: the functions take the session as an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from brainview.decoding.progress import iter_streamed
from brainview.decoding.questions import Turn
from brainview.errors import Cancelled
from brainview.state.model_access import ModelAccess


def never() -> bool:
    return False


def first_text(generate: Callable[..., list[str]], *args, on_text: Callable[[str], None], **kwargs) -> str:
    """The one text ``generate(*args, on_text=..., **kwargs)`` (a decoder's captions or answers) makes."""
    return generate(*args, on_text=on_text, **kwargs)[0]


def _with(answers: dict[str, str], name: str, text: str) -> dict[str, str]:
    return {**answers, name: text}


def iter_foreground_text(access: ModelAccess, generate: Callable[[Callable[[str], None]], str],
                         superseded: Callable[[], bool] = never, step: Callable[[str], object] = str):
    """Run ``generate(on_text=...)`` (one language-model call reporting its text so far) with the model taken as
    foreground on a helper thread; yield ``step(text so far)`` after each token and return the text, or None
    when ``superseded()`` turned True before the call started or while it ran (it then stops within a token;
    ``generate`` must pass ``superseded`` on to the decoder). A :class:`~brainview.errors.Cancelled` of the
    decoder itself (another bundle, closing) is raised."""

    def alone(on_text):
        """On the helper thread, lock and all: a worker that stops at a yield never leaves the lock held."""
        while not access.acquire(timeout=0.05):  # another caption runs: wait, unless superseded
            if superseded():
                return None
        try:
            return None if superseded() else generate(on_text=on_text)
        finally:
            access.release()

    streamed = iter_streamed(alone)
    try:
        while True:
            try:
                text = next(streamed)
            except StopIteration as done:
                return done.value
            yield step(text)
    except Cancelled:
        if superseded():
            return None
        raise
    finally:
        streamed.close()  # a worker stopped at a yield: the helper thread is joined, the lock released


@dataclass(frozen=True)
class CaptionSoFar:
    """A step of :func:`iter_trial_captions`: one stage's caption of a trial while it is generated."""

    trial: int
    stage: str
    text: str
    source: str | int  # the repeat choice it was made under (the mean or a repeat)
    generation: int  # Session.generation: a caption of another bundle is never shown
    done: bool = False  # the stage's whole caption (kept with the others once every stage is done)

    def shows_in(self, session) -> bool:
        """Whether it belongs in the session's trial view now (same bundle, trial and repeat choice)."""
        return (self.generation == session.generation and self.trial == session.trial
                and self.source == session.repeats.source)


def iter_trial_captions(session, trial: int, superseded: Callable[[], bool] = never):
    """Caption a trial on each stage, the first stage's caption streaming, then the next's: yields a
    :class:`CaptionSoFar` after each token and once more, ``done``, with each stage's whole caption; returns
    stage -> {trial: caption} for ``Session.store_captions`` (under a repeat the captions are kept with the
    repeat choice instead and nothing is returned for the session's mean), or None when superseded. Captions
    already made are taken as they are (no model call). The repeat choice and the bundle are pinned when it
    starts: a choice changed meanwhile never mixes in."""
    pinned = session.repeats.pinned()
    if pinned is None and session.repeats.repeat is not None:
        return {}  # the chosen repeat's predictions were dropped (another bundle): nothing to caption or keep
    decoder, source, generation = session.decoder, session.repeats.source, session.generation
    captions: dict[str, dict[int, str]] = {}
    for stage in session.stages:
        text = pinned.caption(stage, trial) if pinned is not None else session.captions.get(stage, {}).get(trial)
        if text is None:
            tokens = pinned.tokens(trial, stage) if pinned is not None else decoder.tokens_for_trials([trial], stage)
            text = yield from iter_foreground_text(
                session.model_lock, partial(first_text, decoder.captions, tokens, superseded=superseded), superseded,
                step=partial(CaptionSoFar, trial, stage, source=source, generation=generation))
            if text is None:
                return None
            if pinned is not None:
                pinned.keep(stage, trial, text)
            yield CaptionSoFar(trial, stage, text, source, generation, done=True)
        if pinned is None:
            captions[stage] = {trial: text}
    return captions


def iter_answers(session, sources: dict[str, np.ndarray], question: str, histories: dict[str, Sequence[Turn]],
                 superseded: Callable[[], bool] = never):
    """Answer a question from each source's query tokens ((1, n_query, query_dim) each, e.g. "brain", "image")
    after its own dialogue so far, one source after the other: yields {source: answer (so far)} after each
    token, the answers done and the one being generated; returns every answer, or None when superseded."""
    decoder = session.decoder
    answers: dict[str, str] = {}
    for name, tokens in sources.items():
        text = yield from iter_foreground_text(
            session.model_lock,
            partial(first_text, decoder.answers, tokens, [question], [histories.get(name, ())], superseded=superseded),
            superseded, step=partial(_with, dict(answers), name))
        if text is None:
            return None
        answers[name] = text
    return answers
