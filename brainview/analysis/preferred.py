"""Which test stimuli drive a region, from the data alone (no model): the test trials ranked by the
region's mean response on the bundle's normalised fMRI, and whether what the top trials share is
more than chance.

A region is any set of voxels: an atlas ROI, a painted selection, a concept map's top voxels.
"What the top trials share" is measured per labelling of the trials: each categorical field of the
trial objects (``scene.category`` in the demo) and the content words and word pairs of their
reference captions. For a labelling the statistic is the largest *enrichment* of one label among the
top trials: its share there less its share over all trials (so words every caption has, "a photo
of", count for nothing). The control draws random voxel sets of the region's size, ranks the trials
by each, and asks how often their top trials are as consistent (a permutation p-value).

The same word counting condenses the captions of any set of trials into its most frequent content
words and phrases (:func:`summary_terms`), LaVCa's summary without a language model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from brainview.decoding.language.phrases import field_value, truth_fields
from brainview.decoding.manifold import region_response

TOP = 10  # trials shown and tested
DRAWS = 200  # random voxel sets of the control
MAX_FIELD_VALUES = 20  # a trial field with more values is not a category
WORDS = "caption words"  # the name of the caption-word labelling

#: function words that never summarize a region (enrichment already discounts words every caption has)
FUNCTION_WORDS = frozenset(
    "a an the of in on at to and or with without for from by is are was were be been being it its this that "
    "these those there here his her their them they he she we you i as into onto over under near next up down "
    "out some one two three very".split())


def content_terms(texts: Sequence[str]) -> set[str]:
    """The content words of some texts and the pairs of adjacent content words ("cartoon face")."""
    terms: set[str] = set()
    for text in texts:
        words = re.findall(r"[a-z]+", text.lower())
        content = [w if w not in FUNCTION_WORDS else None for w in words]
        terms.update(w for w in content if w)
        terms.update(f"{a} {b}" for a, b in zip(content, content[1:]) if a and b)
    return terms


def summary_terms(captions: Sequence[Sequence[str]], trials: Sequence[int], limit: int = 5
                  ) -> list[tuple[str, int]]:
    """The content words and phrases most of ``trials`` have in their references (:meth:`Labelling.summary`)."""
    return Labelling.of_terms(captions).summary(trials, limit)


@dataclass
class Labelling:
    """Which labels each trial carries: ``matrix`` (n_trials, n_labels) bool, ``base`` each label's share."""

    name: str
    names: list[str]
    matrix: np.ndarray
    base: np.ndarray = field(init=False)

    def __post_init__(self):
        self.base = self.matrix.mean(axis=0) if self.matrix.size else np.zeros(len(self.names))

    @classmethod
    def of_sets(cls, name: str, sets: Sequence[set[str]]) -> Labelling:
        names = sorted(set().union(*sets)) if sets else []
        column = {n: i for i, n in enumerate(names)}
        matrix = np.zeros((len(sets), len(names)), dtype=bool)
        for row, labels in enumerate(sets):
            matrix[row, [column[label] for label in labels]] = True
        return cls(name, names, matrix)

    @classmethod
    def of_terms(cls, captions: Sequence[Sequence[str]]) -> Labelling:
        return cls.of_sets(WORDS, [content_terms(refs) for refs in captions])

    def summary(self, trials: Sequence[int], limit: int = 5) -> list[tuple[str, int]]:
        """The labels most of ``trials`` carry, with how many carry each; only labels commoner there than
        over all trials, most frequent first (ties: the more enriched first)."""
        count = self.matrix[np.asarray(trials, dtype=np.int64)].sum(axis=0)
        lift = count / max(len(trials), 1) - self.base
        order = sorted(np.flatnonzero((lift > 0) & (count > 0)), key=lambda i: (-count[i], -lift[i]))
        return [(self.names[i], int(count[i])) for i in order[:limit]]

    def enrichment(self, top: np.ndarray) -> np.ndarray:
        """Per set of top trials (…, k): each label's share among them less its base share (…, n_labels)."""
        return self.matrix[top].mean(axis=-2) - self.base


def category_fields(trials: Sequence[Mapping]) -> list[str]:
    """Dotted paths of the trial fields that look like categories: text with 2..20 values."""
    out = []
    for path in truth_fields(trials):
        values = [field_value(t, path) for t in trials]
        if all(isinstance(v, str) or v is None for v in values) and 2 <= len(set(values) - {None}) <= MAX_FIELD_VALUES:
            out.append(path)
    return out


def trial_labellings(bundle) -> list[Labelling]:
    """Each categorical field of the trials, then the caption words: what preferred stimuli are tested on."""
    fields = [Labelling.of_sets(path, [{str(v)} if (v := field_value(t, path)) is not None else set()
                                       for t in bundle.trials]) for path in category_fields(bundle.trials)]
    return fields + [Labelling.of_terms(bundle.captions)]


@dataclass
class Consistency:
    """How consistent the top trials are in one labelling, against random voxel sets of the same size."""

    field: str
    value: str  # the most enriched label among the top trials
    count: int  # top trials that carry it
    top: int
    base_share: float  # its share over all trials
    enrichment: float  # count / top − base_share: the statistic
    control: np.ndarray = field(repr=False)  # the statistic of each random voxel set

    @property
    def p_value(self) -> float:
        """Permutation p-value: (1 + random sets at least as consistent) / (1 + draws)."""
        return float((1 + (self.control >= self.enrichment - 1e-12).sum()) / (1 + self.control.size))

    def as_dict(self) -> dict:
        return {"field": self.field, "value": self.value, "count": self.count, "top": self.top,
                "base_share": round(self.base_share, 4), "enrichment": round(self.enrichment, 4),
                "control_mean": round(float(self.control.mean()), 4),
                "control_p95": round(float(np.quantile(self.control, 0.95)), 4), "p_value": round(self.p_value, 4),
                "draws": int(self.control.size)}


@dataclass
class PreferredStimuli:
    """The test trials that drive a region most, best first, with the consistency checks."""

    n_voxels: int
    response: np.ndarray = field(repr=False)  # (n_trials,) the region's mean response
    trials: np.ndarray  # the top trials, best first
    consistency: list[Consistency]
    words: list[tuple[str, int]]  # the top trials' most frequent content words and phrases

    def check(self, name: str) -> Consistency | None:
        return next((c for c in self.consistency if c.field == name), None)


def top_trials(response: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest entries along the last axis, best first (ties by trial order)."""
    order = np.argsort(-response, axis=-1, kind="stable")
    return order[..., :k]


def preferred_stimuli(bundle, voxels: np.ndarray, top: int = TOP, draws: int = DRAWS, seed: int = 0,
                      labellings: Sequence[Labelling] | None = None) -> PreferredStimuli:
    """The region's top test trials and, per labelling (:func:`trial_labellings` unless given), the
    most enriched label among them against ``draws`` random voxel sets of the region's size."""
    voxels = np.unique(np.asarray(voxels, dtype=np.int64))
    n_trials, n_voxels = bundle.fmri.shape
    if top < 1:
        raise ValueError(f"top must be at least 1, not {top}")
    top = min(top, n_trials)  # a small bundle shows all its trials
    fmri = np.asarray(bundle.fmri, dtype=np.float32)
    response = region_response(fmri, voxels)
    best = top_trials(response, top)
    rng = np.random.default_rng(seed)
    random_sets = np.zeros((draws, n_voxels), dtype=np.float32)
    for row in range(draws):
        random_sets[row, rng.choice(n_voxels, size=voxels.size, replace=False)] = 1.0 / voxels.size
    random_top = top_trials((fmri @ random_sets.T).T, top)  # (draws, top)
    checks = []
    labellings = trial_labellings(bundle) if labellings is None else labellings
    for labels in labellings:
        if not labels.names:
            continue
        observed = labels.enrichment(best)
        winner = int(np.argmax(observed))
        checks.append(Consistency(labels.name, labels.names[winner], int(labels.matrix[best, winner].sum()), top,
                                  float(labels.base[winner]), float(observed[winner]),
                                  labels.enrichment(random_top).max(axis=1)))
    words = next((labels for labels in labellings if labels.name == WORDS), None) or Labelling.of_terms(bundle.captions)
    return PreferredStimuli(int(voxels.size), response, best, checks, words.summary(best))
