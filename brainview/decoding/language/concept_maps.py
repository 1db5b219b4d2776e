"""Concept maps: which voxels drive a phrase's score, and the lesion check of a map.

Per trial the gradient × input of the brain↔text score (closed form for the linear brain model);
across trials Haufe et al.'s (2014) activation pattern, the covariance of each voxel with the
mapped quantity. :meth:`LanguageProbe.concept_map <brainview.decoding.language.LanguageProbe.concept_map>`
and ``lesion`` put these together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from brainview.decoding.language.phrases import Label
from brainview.errors import UserError

DEFAULT_LESION = 0.05  # share of voxels silenced by the lesion check
RANDOM_DRAWS = 20  # random lesions averaged for the control
MATCHING_SHARE = 0.10  # the trial-independent lesion is scored on the phrase's best-matching tenth of the trials


@dataclass
class ConceptMap:
    """Per-voxel weight of a phrase's score: ``kind`` "gradient×input" (one trial) or "covariance" (all trials)."""

    phrase: str
    values: np.ndarray  # (n_voxels,)
    kind: str
    trial: int | None
    versus: tuple[str, ...] = ()  # alternatives: the map is of the phrase's probability against them
    queries: tuple[Label, ...] = ()  # the phrase's and the alternatives' prompts, as mapped
    unknown: dict[str, tuple[str, ...]] = field(default_factory=dict)  # words the text encoder likely never saw

    def top_voxels(self, fraction: float = DEFAULT_LESION) -> np.ndarray:
        """The ``fraction`` of voxels with the largest (most positive) values, best first."""
        k = top_count(fraction, self.values.size)
        return np.argsort(-self.values, kind="stable")[:k]

    def roi_means(self, rois: Mapping[str, np.ndarray]) -> dict[str, float]:
        """The map's mean over each ROI's voxels, best first (empty ROIs left out)."""
        means = {name: float(self.values[np.asarray(v, dtype=np.int64)].mean()) for name, v in rois.items()
                 if len(v)}
        return dict(sorted(means.items(), key=lambda item: -item[1]))


@dataclass
class LesionCheck:
    """What silencing a map's top voxels does to a phrase's score, against as many random voxels."""

    top_fraction: float
    n_voxels: int
    trials: np.ndarray  # the trials the score is averaged over
    score_before: float
    score_after: float
    random_after: np.ndarray  # (draws,) mean score after each random lesion
    caption_trial: int | None = None
    caption_before: str | None = None
    caption_after: str | None = None
    caption_random: str | None = None
    captions_missing: str | None = None
    measure: str = "score"  # what the scores are: the phrase's "score", or its "log-odds" against the alternatives

    @property
    def score_drop(self) -> float:
        return self.score_before - self.score_after

    @property
    def random_score_drop(self) -> float:
        return self.score_before - float(self.random_after.mean())

    @property
    def random_score_drop_sd(self) -> float:
        return float(self.random_after.std(ddof=1)) if self.random_after.size > 1 else 0.0


def top_count(fraction: float, n: int) -> int:
    if not 0 < fraction <= 1:
        raise UserError(f"the lesion share must lie in (0, 100] %, not {fraction * 100:g} %")
    return max(1, int(round(fraction * n)))


def score_gradient(model, stage: str, pattern: np.ndarray, text: np.ndarray) -> tuple[np.ndarray, float, int]:
    """d score / d pattern in closed form, the score and its winning query token.

    score = max_q û_q·t with u_q = P (W_q x + b_q) + c and û = u/|u|; at the winning token q*,
    d score/dx = W_q*ᵀ Pᵀ (t − û (û·t)) / |u| (the rows of the stage-2 weight of that token,
    through the projection, dotted with the text direction less its part along û).
    """
    x = np.asarray(pattern, dtype=np.float64)
    lin = model.stage(stage)
    n_query, query_dim = model.n_query, model.query_dim
    tokens = (lin.weight.astype(np.float64) @ x + lin.bias).reshape(n_query, query_dim)
    p = model.projection_weight.astype(np.float64)
    u = tokens @ p.T + model.projection_bias
    norms = np.maximum(np.linalg.norm(u, axis=1), 1e-12)
    unit = u / norms[:, None]
    t = np.asarray(text, dtype=np.float64)
    cos = unit @ t
    q = int(np.argmax(cos))
    d_u = (t - unit[q] * cos[q]) / norms[q]
    rows = lin.weight[q * query_dim:(q + 1) * query_dim].astype(np.float64)
    return rows.T @ (p.T @ d_u), float(cos[q]), q


def haufe_pattern(patterns: np.ndarray, quantity: np.ndarray) -> np.ndarray:
    """cov(voxel, quantity) / sd(quantity) over the trials: the activation that goes with one sd of the quantity."""
    centred = quantity - quantity.mean()
    sd = centred.std(ddof=1) if len(quantity) > 1 else 0.0
    if not sd > 0:
        raise UserError("the phrase scores every trial the same: there is no covariance to map")
    return (patterns - patterns.mean(axis=0)).T.astype(np.float64) @ centred / (len(centred) - 1) / sd


def silence_many(patterns: np.ndarray, voxels: np.ndarray) -> np.ndarray:
    """Patterns (n, n_voxels) with ``voxels`` set to 0, the z-scored baseline (``synthetic.lesion``'s rule)."""
    out = np.array(patterns, dtype=np.float32, copy=True)
    out[:, np.asarray(voxels, dtype=np.int64)] = 0.0
    return out
