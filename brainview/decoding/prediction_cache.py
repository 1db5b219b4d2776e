"""Every test trial's predicted tokens and image ranks: the pass that opens a bundle, the pass over
every trial, and the bundle's prediction cache (format version 2) that saves the second one.

At NSD size predicting every trial is 2 × 380 GMAC (100 s on a shared 2-core CPU), while one
pass with a few patterns costs a read of the weights (1.5 GB). Opening a bundle without a cache
therefore makes one pass per stage with the first trial and the atlas ROIs. With a cache, opening
makes no pass: the first trial, a seeded sample of :data:`SAMPLE_TRIALS` trials, is predicted on a
seeded :data:`CHECK_OUTPUTS` of each stage's outputs (a twelfth of the weights at NSD size) and
compared with the cached tokens, after the fingerprints of the weights and the fMRI; a cache that
agrees gives the first trial and every rank at once (the ROIs' sums follow, :func:`iter_sum_rois`). A cache that disagrees (weights or fMRI changed after it was written) is not used: the
ranks are computed as for a bundle without one, and a note tells the user why and how to mend it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from brainview.bundle import Bundle, open_bundle
from brainview.bundle.predictions import fingerprint_problem, write_cache
from brainview.decoding.decoder import Decoder
from brainview.decoding.progress import finish, relayed
from brainview.decoding.retrieval import image_scores, rank_of
from brainview.errors import UserError

#: trials besides the first that the opening pass predicts to check a cache (they cost no extra pass)
SAMPLE_TRIALS = 16
SAMPLE_SEED = 0
#: outputs per stage (seeded) on which the sample is predicted again to check the cache
CHECK_OUTPUTS = 2048
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
        return (f"The bundle's prediction cache cannot be used ({self.problem}), so every "
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
    """What the worker that opens a bundle computes so that ``trial``'s retrievals show at once: with
    a cache that agrees with the weights (checked on a sample), nothing more, the decoder takes the
    cached tokens of every trial; otherwise the trial's tokens and the atlas ROIs' column sums, in one
    pass over each stage's weights (every rank follows in :func:`iter_predictions`)."""
    bundle = decoder.bundle
    check = check_cache(decoder, trial)
    if bundle.predictions and check.problem is None:
        for stage, tokens in bundle.predictions.items():
            decoder.keep_tokens(stage, tokens)
        check.stages = list(bundle.predictions)
    for stage in bundle.stages:
        if not decoder.has_all_tokens(stage):
            finish(decoder.iter_predict([trial], stage, remember=trial))
    return check


def check_cache(decoder: Decoder, trial: int = 0) -> CacheCheck:
    """Whether the bundle's prediction cache can be used, as the app decides when it opens the bundle:
    its files read (``Bundle.predictions_problem``), its fingerprints match the weights and fMRI, and
    a seeded sample of trials (with ``trial``) agrees with the weights' prediction."""
    bundle = decoder.bundle
    check = CacheCheck(problem=bundle.predictions_problem, path=str(bundle.path))
    if bundle.predictions:
        check.problem = fingerprint_problem(bundle)
        if check.problem is None:
            _check_sample(bundle, decoder, sample_trials(bundle.n_trials, trial), check)
    return check


def _check_sample(bundle: Bundle, decoder: Decoder, trials: np.ndarray, check: CacheCheck) -> None:
    """Compare the cached tokens of ``trials`` with the weights' prediction on a seeded subset of each
    stage's outputs; the first disagreement becomes ``check.problem``."""
    patterns = bundle.fmri[trials]
    check.trials = trials.tolist()
    for stage, cached in bundle.predictions.items():
        n_out = bundle.n_query * bundle.query_dim
        rng = np.random.default_rng(SAMPLE_SEED)
        outputs = np.sort(rng.choice(n_out, size=min(CHECK_OUTPUTS, n_out), replace=False))
        predicted = decoder.model.predict_outputs(patterns, outputs, stage)
        errors = relative_errors(np.asarray(cached[trials]).reshape(len(trials), -1)[:, outputs], predicted)
        check.max_error = max(check.max_error, float(errors.max()))
        worst = int(np.argmax(errors))
        if errors[worst] > TOLERANCE:
            check.problem = (f"{stage} of trial {bundle.trials[int(trials[worst])]['id']} differs from the "
                             f"weights' prediction by {errors[worst]:.1%}")
            return


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


def iter_sum_rois(decoder: Decoder) -> Iterator[tuple[int, int, str]]:
    """The atlas ROIs' column sums on every stage where no prediction pass brought them (a verified
    cache), so checking an ROI decodes it at once: one pass over each stage's weights, for a worker
    after the ranks. Yields ``(done, total, what)``."""
    stages = list(decoder.bundle.stages)
    for i, stage in enumerate(stages):
        for rows, total in decoder.iter_sum_rois(stage):
            yield i * total + rows, len(stages) * total, f"summing the ROIs' weights of {stage.replace('stage', 'stage ')}"


def compute_cache(bundle: Bundle, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """Every trial's predicted tokens per stage, with the brain model the app uses (one pass per stage)."""
    decoder = Decoder(bundle)
    out = {}
    for stage in bundle.stages:
        report = progress or (lambda *step: None)
        out[stage] = finish(relayed(decoder.model.iter_predict(bundle.fmri, stage),
                                    lambda rows, total: report(rows, total, f"predicting {stage}")))
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
