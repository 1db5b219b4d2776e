"""Phrase search: a phrase's score for every test trial, from the brain and from the true image tokens."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from brainview.decoding.language.phrases import Label


@dataclass
class SearchResult:
    """A phrase's score for every test trial, from the brain and from the true image tokens."""

    phrase: str
    brain: np.ndarray  # (n_trials,)
    image: np.ndarray  # (n_trials,)
    query: Label | None = None  # the prompts scored (several: their embeddings averaged)
    unknown: dict[str, tuple[str, ...]] = field(default_factory=dict)  # words the text encoder likely never saw

    @property
    def order(self) -> np.ndarray:
        """Trial indices, best brain match first (ties by trial order)."""
        return np.argsort(-self.brain, kind="stable")

    @property
    def agreement(self) -> float:
        """Spearman correlation of the brain's and the true images' scores: how much of the ranking the brain explains."""
        from scipy.stats import spearmanr

        rho = spearmanr(self.brain, self.image).statistic
        return float(rho) if np.isfinite(rho) else math.nan

    def overlap(self, k: int) -> float:
        """Share of the brain's top k trials that are also in the true images' top k."""
        k = max(1, min(k, self.brain.size))
        brain_top = set(np.argsort(-self.brain, kind="stable")[:k].tolist())
        image_top = set(np.argsort(-self.image, kind="stable")[:k].tolist())
        return len(brain_top & image_top) / k
