"""Zero-shot labels: per-trial label scores, top-k accuracy with Wilson intervals, chance and confusion."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from brainview.decoding.language.phrases import Label

TOP5 = 5


@dataclass
class Accuracy:
    """Zero-shot accuracy on the trials whose truth is one of the labels."""

    top1: float
    top5: float
    ci95: tuple[float, float]  # Wilson interval of top1
    top5_ci95: tuple[float, float]
    chance: float  # top-1 of a uniform random guess, 1 / n_labels
    chance_top5: float
    n: int
    confusion: np.ndarray  # (n_labels, n_labels): rows truth, columns top-1 prediction

    def to_json(self) -> dict:
        return {"top1": self.top1, "top5": self.top5, "ci95": list(self.ci95), "top5_ci95": list(self.top5_ci95),
                "chance": self.chance, "chance_top5": self.chance_top5, "n": self.n}


@dataclass
class ZeroShot:
    """Per-trial label scores from the brain and from the true image tokens, with accuracy where a truth exists."""

    labels: list[Label]
    brain: np.ndarray  # (n_trials, n_labels)
    image: np.ndarray
    truth_field: str | None = None
    truth: np.ndarray | None = None  # (n_trials,) label index, -1 where the trial's truth is not a label
    accuracy: Accuracy | None = None
    image_accuracy: Accuracy | None = None
    unknown: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)  # label → its unknown words

    @property
    def names(self) -> list[str]:
        return [label.name for label in self.labels]

    def top(self, trial: int, k: int = TOP5, source: str = "brain") -> list[str]:
        scores = (self.brain if source == "brain" else self.image)[trial]
        return [self.labels[i].name for i in np.argsort(-scores, kind="stable")[:k]]


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (scipy's binomial test)."""
    if n == 0:
        return (math.nan, math.nan)
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return (float(ci.low), float(ci.high))


def zero_shot_accuracy(scores: np.ndarray, truth: np.ndarray, k: int = TOP5) -> Accuracy:
    """Top-1 and top-k accuracy of label scores (n, L) against truth indices (n,; -1: not a label)."""
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.int64)
    n_labels = scores.shape[1]
    known = truth >= 0
    s, t = scores[known], truth[known]
    k = min(k, n_labels)
    # rank of the true label: labels scoring strictly higher, plus 1 (ties count in the label's favour)
    true_score = s[np.arange(len(t)), t]
    rank = (s > true_score[:, None]).sum(axis=1) + 1
    hits1, hits5 = int((rank == 1).sum()), int((rank <= k).sum())
    n = int(known.sum())
    predicted = np.argmax(s, axis=1)
    confusion = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(confusion, (t, predicted), 1)
    return Accuracy(hits1 / n if n else math.nan, hits5 / n if n else math.nan, wilson_interval(hits1, n),
                    wilson_interval(hits5, n), 1.0 / n_labels, k / n_labels, n, confusion)
