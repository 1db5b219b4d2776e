"""Every test trial's predicted tokens and image ranks: the pass that opens a bundle, the pass over
every trial, and the bundle's prediction cache (format version 2) that saves the second one.

At NSD size predicting every trial is 2 × 380 GMAC (100 s on a shared 2-core CPU), while one
pass with a few patterns costs a read of the weights. Opening therefore makes one pass per stage
with the first trial, a seeded sample of :data:`SAMPLE_TRIALS` trials and the atlas ROIs; with a
cache the sample is compared with the cached tokens, and a cache that agrees gives every rank at
once. A cache that disagrees (weights or fMRI changed after it was written) is not used: the
ranks are computed as for a bundle without one, and a note tells the user why and how to mend it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from brainview.bundle import Bundle, open_bundle
from brainview.bundle.predictions import fingerprint_problem, write_cache
from brainview.decoding.decoder import Decoder
from brainview.decoding.retrieval import image_scores, rank_of
from brainview.errors import UserError

#: trials besides the first that the opening pass predicts to check a cache (they cost no extra pass)
SAMPLE_TRIALS = 16
SAMPLE_SEED = 0
#: largest relative L2 distance between a cached and a freshly predicted trial: float16 storage rounds
#: each value by at most 2^-11 (4.9e-4) of itself, about 2.8e-4 over a trial; a GPU half-precision
#: pass by about 1e-3; a refit or a changed pattern moves tokens by far more
TOLERANCE = 2e-3
#: trials ranked at a time against every image (bounds the float32 copies of cached tokens)
RANK_CHUNK = 256

Progress = Callable[[int, int, str], None]


@dataclass
class Predictions:
    """Every trial's predicted tokens and brain × image similarity per stage (from a worker)."""

    bundle: Bundle
    tokens: dict[str, np.ndarray]  # stage -> (n_trials, n_query, query_dim)
    similarity: dict[str, np.ndarray]  # stage -> (n_trials, n_trials)


@dataclass
class CacheCheck:
    """What opening found out about the bundle's prediction cache."""

    stages: list[str] = field(default_factory=list)  # stages whose cached tokens are used
    trials: list[int] = field(default_factory=list)  # the trials compared
    max_error: float = 0.0  # largest relative distance, cached against predicted
    problem: str | None = None  # why the cache is not used
    path: str = "PATH"  # the bundle's folder, for the command that mends it

    @property
    def note(self) -> str | None:
        """For the user: why every trial is being predicted although the bundle has a cache."""
        if self.problem is None:
            return None
        return (f"The bundle's prediction cache is out of date ({self.problem}), so it is not used: every "
                "trial's tokens are predicted from the weights instead (slow at full size). Rebuild it with "
                f"`brainview cache {self.path}`.")


def ranks(similarity: np.ndarray) -> np.ndarray:
    """1-based rank of each trial's own image among all test images (ties counted against it)."""
    return np.array([rank_of(row, t) for t, row in enumerate(similarity)], dtype=np.float64)


def sample_trials(n_trials: int, first: int, size: int = SAMPLE_TRIALS) -> np.ndarray:
    """``first`` and a seeded sample of the other trials, the rows the opening pass predicts."""
    others = np.setdiff1d(np.arange(n_trials), [first])
    chosen = np.random.default_rng(SAMPLE_SEED).choice(others, size=min(size, others.size), replace=False)
    return np.concatenate([[first], np.sort(chosen)]).astype(np.int64)


def relative_errors(cached: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per trial, ``‖cached − predicted‖ / ‖predicted‖`` over all its tokens."""
    cached = np.asarray(cached, dtype=np.float32).reshape(len(cached), -1)
    predicted = np.asarray(predicted, dtype=np.float32).reshape(len(predicted), -1)
    scale = np.maximum(np.linalg.norm(predicted, axis=1), np.finfo(np.float32).tiny)
    return np.linalg.norm(cached - predicted, axis=1) / scale


def open_pass(decoder: Decoder, trial: int = 0) -> CacheCheck:
    """What the worker that opens a bundle predicts: ``trial``'s tokens (its retrievals show at once)
    and the atlas ROIs' column sums, in one pass over each stage's weights; with a cache, a seeded
    sample of trials rides along and is compared with it. A cache that agrees is handed to the
    decoder, so every rank follows without another pass (:func:`iter_predictions`)."""
    bundle = decoder.bundle
    check = CacheCheck(problem=fingerprint_problem(bundle) if bundle.predictions else None, path=str(bundle.path))
    verify = bool(bundle.predictions) and check.problem is None
    trials = sample_trials(bundle.n_trials, trial) if verify else np.array([trial], dtype=np.int64)
    for stage in bundle.stages:
        steps = decoder.iter_predict(trials, stage, remember=trial)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                tokens = done.value
                break
        if verify and check.problem is None and stage in bundle.predictions:
            errors = relative_errors(bundle.predictions[stage][trials], tokens)
            check.trials = trials.tolist()
            check.max_error = max(check.max_error, float(errors.max()))
            worst = int(np.argmax(errors))
            if errors[worst] > TOLERANCE:
                check.problem = (f"{stage} of trial {bundle.trials[int(trials[worst])]['id']} differs from the "
                                 f"weights' prediction by {errors[worst]:.1%}")
    if verify and check.problem is None:
        for stage, tokens in bundle.predictions.items():
            decoder.keep_tokens(stage, tokens)
        check.stages = list(bundle.predictions)
    return check


def iter_predictions(decoder: Decoder) -> Iterator[tuple[int, int, str]]:
    """Every test trial's tokens on every stage (from the verified cache, else one pass over the
    stage's weights), then their image similarities, in chunks: long work for a worker.

    Yields ``(done, total, what)``; returns :class:`Predictions`. Changes nothing but the decoder's
    token cache.
    """
    bundle = decoder.bundle
    n, per_stage = bundle.n_trials, bundle.n_query * bundle.query_dim
    chunks = range(0, n, RANK_CHUNK)
    todo = [s for s in bundle.stages if not decoder.has_all_tokens(s)]
    total = per_stage * len(todo) + len(chunks) * len(bundle.stages)
    done = 0
    tokens, similarity = {}, {}
    for stage in bundle.stages:
        label = stage.replace("stage", "stage ")
        if stage in todo:
            steps = decoder.iter_predict_all(stage)
            while True:
                try:
                    rows, _ = next(steps)
                except StopIteration:
                    break
                yield done + rows, total, f"predicting {label}"
            done += per_stage
        tokens[stage] = decoder.tokens_of_all(stage)
        similarity[stage] = np.empty((n, n), dtype=np.float32)
        for start in chunks:
            trials = np.arange(start, min(start + RANK_CHUNK, n))
            similarity[stage][trials] = image_scores(decoder.tokens_for_trials(trials, stage), decoder.unit_targets,
                                                     unit_targets=True)
            done += 1
            yield done, total, f"ranking {label}"
    return Predictions(bundle, tokens, similarity)


def compute_cache(bundle: Bundle, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """Every trial's predicted tokens per stage, with the brain model the app uses (one pass per stage)."""
    decoder = Decoder(bundle)
    out = {}
    for stage in bundle.stages:
        steps = decoder.model.iter_predict(bundle.fmri, stage)
        while True:
            try:
                rows, total = next(steps)
            except StopIteration as finished:
                out[stage] = finished.value
                break
            if progress is not None:
                progress(rows, total, f"predicting {stage}")
    return out


def add_cache(path, dtype: str = "float16", progress: Progress | None = None) -> tuple[Bundle, CacheCheck]:
    """Write the prediction cache of the bundle at ``path`` (atomically, see
    :func:`~brainview.bundle.predictions.write_cache`), then open it again and check it as the app
    does. Returns the reopened bundle and the check (its ``max_error`` is what the dtype costs)."""
    bundle = open_bundle(path)
    tokens = compute_cache(bundle, progress)
    largest = max(float(np.abs(t).max()) for t in tokens.values())
    if dtype == "float16" and largest > float(np.finfo(np.float16).max):
        raise UserError(f"predicted tokens reach {largest:.3g}, beyond float16's range: cache them as float32")
    write_cache(bundle, tokens, dtype=dtype)
    reopened = open_bundle(path)
    check = open_pass(Decoder(reopened))
    if check.problem is not None:  # the cache just written must agree with the weights it came from
        raise RuntimeError(f"the prediction cache written to {path} does not check: {check.problem}")
    return reopened, check
