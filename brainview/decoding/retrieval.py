"""Retrieval: similarity of brain-predicted tokens to images and captions, and the evaluation protocol.

Directions are named by what is ranked given what (DESIGN.md §4): ``image_given_brain`` ranks
candidate images for each brain pattern, ``brain_given_image`` ranks brain patterns for each
image, and the same for text. The GUI's top-k lists and ``brainview eval`` use these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainview.decoding.vectors import unit_norm

DIRECTIONS = ("image_given_brain", "brain_given_image", "text_given_brain", "brain_given_text")
IMAGE_REPEATS, TEXT_REPEATS, POOL, SEED = 30, 50, 300, 42


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    return unit_norm(x)


def image_scores(predicted: np.ndarray, targets: np.ndarray, unit_targets: bool = False) -> np.ndarray:
    """Cosine of flattened query tokens: (n, q, d) × (m, q, d) → (n, m). ``unit_targets``: the
    targets are already flattened and L2-normalized (m, q·d), as a decoder keeps them."""
    return _unit_rows(predicted) @ (targets if unit_targets else _unit_rows(targets)).T


def text_scores(projected: np.ndarray, texts: np.ndarray) -> np.ndarray:
    """BLIP-2 ITC score: max over query tokens of token·text; (n, q, t) × (m, t) → (n, m).

    ``projected`` must already be L2-normalized per token (``BrainModel.project_text``).
    """
    projected = np.asarray(projected, dtype=np.float32)
    return np.einsum("nqt,mt->nmq", projected, np.asarray(texts, dtype=np.float32)).max(axis=2)


@dataclass
class Ranked:
    indices: np.ndarray
    scores: np.ndarray


def top_k(scores: np.ndarray, k: int) -> Ranked:
    """The k best candidates of one score row, best first."""
    scores = np.asarray(scores).ravel()
    k = min(k, scores.size)
    part = np.argpartition(-scores, k - 1)[:k]
    order = part[np.argsort(-scores[part], kind="stable")]
    return Ranked(order, scores[order])


def rank_of(scores: np.ndarray, true_index: int) -> int:
    """1-based rank of the true candidate in one score row (ties counted against it)."""
    scores = np.asarray(scores).ravel()
    return int((scores > scores[true_index]).sum()) + 1


def first_true_ranks(scores: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per row, the 1-based rank of the best-scoring true candidate (``true``: bool mask like ``scores``):
    one plus the number of false candidates that score higher (a trial's several captions count once)."""
    scores = np.asarray(scores)
    best_true = np.where(true, scores, -np.inf).max(axis=1, keepdims=True)
    return ((scores > best_true) & ~true).sum(axis=1) + 1


def _summary(values: list[float], pool: int) -> dict:
    values_arr = np.asarray(values, dtype=np.float64)
    mean = float(values_arr.mean())
    half = 1.96 * float(values_arr.std(ddof=1)) / np.sqrt(len(values_arr)) if len(values_arr) > 1 else 0.0
    return {"top1": mean, "ci95": [float(mean - half), float(mean + half)], "repeats": len(values_arr), "pool": pool}


def _diagonal_hits(block: np.ndarray) -> np.ndarray:
    """Per row, whether its best column is the diagonal one (strictly better than every other)."""
    diag = np.diag(block)
    others = block.copy()
    np.fill_diagonal(others, -np.inf)
    return diag > others.max(axis=1)


def _top1_rows(block: np.ndarray) -> float:
    """Fraction of rows whose best column is the diagonal one."""
    return float(_diagonal_hits(block).mean())


def trial_hits(predicted: np.ndarray, image_targets: np.ndarray, projected: np.ndarray | None = None,
               text_embeddings: np.ndarray | None = None, text_index: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per direction, per trial: whether the true candidate ranks first among all trials' (an n-way task;
    text: each trial's first reference caption). Paired across two sets of predictions of the same trials,
    their difference has an interval over trials, which the pooled protocol's draws do not give."""
    scores = image_scores(predicted, image_targets)
    hits = {"image_given_brain": _diagonal_hits(scores), "brain_given_image": _diagonal_hits(scores.T)}
    if projected is not None and text_embeddings is not None and text_index is not None:
        index = np.asarray(text_index)
        first = np.array([np.flatnonzero(index[:, 0] == t)[0] for t in range(len(predicted))])
        block = text_scores(projected, np.asarray(text_embeddings)[first])
        hits.update(text_given_brain=_diagonal_hits(block), brain_given_text=_diagonal_hits(block.T))
    return hits


def evaluate_retrieval(predicted: np.ndarray, image_targets: np.ndarray, projected: np.ndarray | None = None,
                       text_embeddings: np.ndarray | None = None, text_index: np.ndarray | None = None,
                       *, image_repeats: int = IMAGE_REPEATS, text_repeats: int = TEXT_REPEATS,
                       pool: int = POOL, seed: int = SEED) -> dict:
    """The protocol of DESIGN.md §4: top-1 in a ``pool``-way task, mean and 95% interval over repeats.

    Each repeat draws ``pool`` distinct trials without replacement (all trials if there are
    fewer); text repeats also draw one reference caption per trial. The interval is the normal
    approximation of the mean's 95% confidence interval across repeats.
    """
    n = len(predicted)
    pool = min(pool, n)
    rng = np.random.default_rng(seed)
    scores = image_scores(predicted, image_targets)
    results: dict[str, dict] = {}
    brain_image, image_brain = [], []
    for _ in range(image_repeats):
        pick = rng.choice(n, size=pool, replace=False)
        block = scores[np.ix_(pick, pick)]
        brain_image.append(_top1_rows(block))
        image_brain.append(_top1_rows(block.T))
    results["image_given_brain"] = _summary(brain_image, pool)
    results["brain_given_image"] = _summary(image_brain, pool)
    if projected is None or text_embeddings is None or text_index is None:
        return results
    text_index = np.asarray(text_index)
    by_trial = [np.flatnonzero(text_index[:, 0] == t) for t in range(n)]
    if any(len(rows) == 0 for rows in by_trial):
        raise ValueError("every trial needs at least one text embedding for text retrieval")
    brain_text, text_brain = [], []
    for _ in range(text_repeats):
        pick = rng.choice(n, size=pool, replace=False)
        texts = np.array([rng.choice(by_trial[t]) for t in pick])
        block = text_scores(projected[pick], text_embeddings[texts])
        brain_text.append(_top1_rows(block))
        text_brain.append(_top1_rows(block.T))
    results["text_given_brain"] = _summary(brain_text, pool)
    results["brain_given_text"] = _summary(text_brain, pool)
    return results


def evaluate_stage(model, stage: str, fmri: np.ndarray, image_targets: np.ndarray, text_embeddings: np.ndarray,
                   text_index: np.ndarray, *, repeats: int | None = None, seed: int = SEED) -> tuple[np.ndarray, dict]:
    """Predicted tokens of one stage of a ``BrainModel`` and their retrieval protocol.

    The text directions need the stage-2 projection, so stage 1 reports the two image directions.
    ``repeats`` replaces both default repeat counts. ``brainview eval`` and the NSD pipeline's
    Table 1 both come from here.
    """
    predicted = model.predict(fmri, stage=stage)
    projected = model.project_text(predicted) if stage == "stage2" and model.has_text_projection else None
    retrieval = evaluate_retrieval(
        predicted, image_targets, projected, None if projected is None else text_embeddings,
        None if projected is None else text_index, image_repeats=repeats or IMAGE_REPEATS,
        text_repeats=repeats or TEXT_REPEATS, seed=seed)
    return predicted, retrieval
