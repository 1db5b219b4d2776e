"""Which pattern of each trial the app decodes: the stored mean of its repeats, or repeat k alone.

With repeat k chosen, the trial view retrieves and captions the current trial from its repeat k, and the
failure hunt ranks every trial by its repeat k's true-image rank (one pass over each stage's weights,
:func:`iter_repeat_predictions`, in a worker). A trial with fewer than k repeats uses its last valid one
and says so (:meth:`RepeatChoice.label`). Caption-metric scores of every trial stay the mean's (they
need every trial captioned): under a repeat they are withheld rather than shown beside another pattern's
ranks. Qt-free; the session holds one :class:`RepeatChoice` as ``session.repeats``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from brainview.decoding.prediction_cache import ranks
from brainview.decoding.progress import relayed
from brainview.decoding.retrieval import image_scores
from brainview.events import Observable
from brainview.state.repeats import MEAN


def repeat_patterns(bundle, repeat: int) -> tuple[np.ndarray, np.ndarray]:
    """Every trial's repeat ``repeat`` (1-based), float32 (n_trials, n_voxels), and the repeat each trial
    actually uses: its last valid one where it has fewer than ``repeat``."""
    if bundle.fmri_repeats is None:
        raise ValueError("the bundle holds only each image's mean pattern")
    if not 1 <= repeat <= bundle.max_repeats:
        raise ValueError(f"repeat {repeat} is outside 1..{bundle.max_repeats}")
    used = np.minimum(repeat, np.asarray(bundle.repeat_counts, dtype=np.int64))
    patterns = np.asarray(bundle.fmri_repeats[np.arange(bundle.n_trials), used - 1], dtype=np.float32)
    return patterns, used


@dataclass
class RepeatPredictions:
    """Every trial's tokens and true-image ranks on every stage, from its repeat ``repeat``."""

    bundle: object  # the bundle they were predicted for (a replaced bundle's are dropped)
    repeat: int
    used: np.ndarray  # per trial, the repeat actually decoded (< repeat: it has fewer)
    tokens: dict[str, np.ndarray]  # stage -> (n_trials, n_query, query_dim)
    similarity: dict[str, np.ndarray]  # stage -> (n_trials, n_trials) brain x image cosine
    ranks: dict[str, np.ndarray]  # stage -> 1-based rank of each trial's true image


def iter_repeat_predictions(bundle, decoder, repeat: int) -> Iterator[tuple[int, int, str]]:
    """Predict every trial's repeat ``repeat`` on every stage, one pass over each stage's weights (a
    worker's job at NSD size). Yields ``(done, total, what)``; returns :class:`RepeatPredictions`."""
    patterns, used = repeat_patterns(bundle, repeat)
    tokens, similarity, rank = {}, {}, {}
    stages = list(bundle.stages)
    for number, stage in enumerate(stages):
        tokens[stage] = yield from relayed(
            decoder.model.iter_predict(patterns, stage),
            lambda done, total: (number * total + done, len(stages) * total,
                                 f"predicting every trial's repeat {repeat}"))
        similarity[stage] = image_scores(tokens[stage], decoder.unit_targets, unit_targets=True)
        rank[stage] = ranks(similarity[stage])
    return RepeatPredictions(bundle, repeat, used, tokens, similarity, rank)


@dataclass
class PinnedRepeat:
    """One repeat's predictions, pinned when a worker starts captioning a trial from them: a choice changed
    meanwhile cannot mix into its captions, and a bundle replaced meanwhile drops what it makes."""

    choice: RepeatChoice
    predictions: RepeatPredictions

    def caption(self, stage: str, trial: int) -> str | None:
        with self.choice._lock:
            return self.choice._captions.get((self.predictions.repeat, stage, trial))

    def tokens(self, trial: int, stage: str) -> np.ndarray:
        """The trial's tokens from this repeat, (1, n_query, query_dim) float32."""
        return np.asarray(self.predictions.tokens[stage][[trial]], dtype=np.float32)

    def keep(self, stage: str, trial: int, text: str) -> None:
        """Keep a caption under this repeat (from a worker), unless its predictions were dropped meanwhile."""
        repeat = self.predictions.repeat
        with self.choice._lock:
            if self.choice._predictions.get(repeat) is self.predictions:
                self.choice._captions[repeat, stage, trial] = text


class RepeatChoice(Observable):
    """The session's chosen pattern source (``MEAN`` or a repeat number) with what it decodes to."""

    EVENTS = ("choice",)
    KIND = "repeat choice"

    def __init__(self, session):
        super().__init__()
        self.session = session
        self.source: str | int = MEAN
        self._predictions: dict[int, RepeatPredictions] = {}
        self._captions: dict[tuple[int, str, int], str] = {}  # (repeat, stage, trial) -> caption
        self._lock = threading.Lock()  # workers caption trials while the GUI thread reads
        session.connect("bundle", lambda s: self._reset())

    def _reset(self) -> None:
        self.source = MEAN
        self._predictions.clear()
        with self._lock:
            self._captions.clear()
        self._emit("choice")

    @property
    def repeat(self) -> int | None:
        """The chosen repeat, or None for the mean."""
        return None if self.source == MEAN else int(self.source)

    def has(self, source: str | int) -> bool:
        """Whether choosing ``source`` is instant (the mean, or a repeat already predicted)."""
        return source == MEAN or int(source) in self._predictions

    def choose(self, source: str | int) -> None:
        """Show ``source``: the mean, or a repeat whose predictions :meth:`keep` has."""
        if not self.has(source):
            raise ValueError(f"repeat {source} is not predicted yet")
        if source != self.source:
            self.source = source
            self._emit("choice")

    def keep(self, predictions: RepeatPredictions) -> None:
        """Take a repeat's predictions (from :func:`iter_repeat_predictions`, on the GUI thread) and show it."""
        if predictions.bundle is not self.session.bundle:
            return  # predicted for a bundle that has since been replaced
        self._predictions[predictions.repeat] = predictions
        self.choose(predictions.repeat)

    def tokens(self, trial: int, stage: str) -> np.ndarray:
        """The trial's predicted tokens (n_query, query_dim) from the chosen pattern."""
        if self.repeat is None:
            return self.session.decoder.tokens_for_trials([trial], stage)[0]
        return np.asarray(self._predictions[self.repeat].tokens[stage][trial], dtype=np.float32)

    def ranks(self, stage: str) -> np.ndarray | None:
        """Every trial's true-image rank from the chosen repeat (None under the mean: the session's)."""
        return None if self.repeat is None else self._predictions[self.repeat].ranks[stage]

    def caption(self, stage: str, trial: int) -> str | None:
        with self._lock:
            return self._captions.get((self.repeat, stage, trial))

    def pinned(self) -> PinnedRepeat | None:
        """The chosen repeat's predictions for a worker that captions a trial from them (None under the mean)."""
        predictions = self._predictions.get(self.repeat) if self.repeat is not None else None
        return None if predictions is None else PinnedRepeat(self, predictions)

    def label(self, trial: int) -> str:
        """What the trial view says it decodes: nothing for the mean, else the repeat, and when the trial
        has fewer repeats, that its last one stands in."""
        if self.repeat is None:
            return ""
        used = int(self._predictions[self.repeat].used[trial])
        return (f"repeat {used}" if used == self.repeat
                else f"repeat {used} (its last: it has no repeat {self.repeat})")

    def fallbacks(self) -> int:
        """How many trials decode an earlier repeat because they have fewer than the chosen one."""
        return 0 if self.repeat is None else int(np.sum(self._predictions[self.repeat].used < self.repeat))
