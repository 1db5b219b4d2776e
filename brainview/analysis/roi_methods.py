"""Three ways to say what a region prefers, as query tokens for the captioner and a word summary.

* ``paper``: the MICCAI paper's synthetic pattern (the region's voxels set to 1, each predicted token
  normalised and scaled), :mod:`brainview.decoding.synthetic`.
* ``manifold``: the region's forward-model direction projected onto the test images' tokens
  (BrainSCUBA's projection, :mod:`brainview.decoding.manifold`); its words are LaVCa's summary of the
  bank images closest to the direction (their references' most frequent content words and phrases).
* ``data``: no model at all: the mean of the true image tokens of the test trials the region responds
  to most (:mod:`brainview.analysis.preferred`), and their references' words.

The manifold and data methods read test trials; :func:`describe_regions` takes the trials to use, so the
held-out evaluation (:mod:`brainview.analysis.roi_evaluation`) can fit them on one half and test on the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from brainview.analysis.preferred import TOP, Labelling, top_trials
from brainview.decoding.manifold import TEMPERATURE, manifold_point, region_response

METHODS = ("paper", "manifold", "data")
REGION_MODES = ("manifold", "data")  # the synthetic-pattern modes (beside the paper's "roi") these methods give
METHOD_LABELS = {"paper": "paper ×scale", "manifold": "manifold", "data": "preferred stimuli"}


@dataclass
class RegionTokens:
    """What one method makes of one region: tokens to caption, the word summary, and how it was made."""

    method: str
    tokens: np.ndarray = field(repr=False)  # (n_query, query_dim)
    words: list[tuple[str, int]]  # content words and phrases with how many images have them (manifold, data)
    images: list[int]  # the trials (test images) the words come from
    details: dict  # scale; temperature and effective images; top


def region_tokens(decoder, voxels: np.ndarray, stage: str, method: str, *, trials: np.ndarray | None = None,
                  scale: float | None = None, temperature: float = TEMPERATURE, top: int = TOP,
                  words: Labelling | None = None) -> RegionTokens:
    """The region's tokens by ``method`` from ``trials`` (default: every test trial); ``words``: the
    caption-word labelling of every trial when already built (it is the same for every region)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    bundle = decoder.bundle
    voxels = np.unique(np.asarray(voxels, dtype=np.int64))
    if method == "paper":
        scale = bundle.synthetic_scale if scale is None else scale
        return RegionTokens(method, decoder.synthetic("roi", voxels, stage, scale=scale), [], [], {"scale": scale})
    trials = np.arange(bundle.n_trials) if trials is None else np.asarray(trials, dtype=np.int64)
    words = Labelling.of_terms(bundle.captions) if words is None else words
    bank = np.asarray(bundle.image_embeddings[trials], dtype=np.float32)
    fmri = np.asarray(bundle.fmri[trials], dtype=np.float32)
    top = min(top, trials.size)
    if method == "manifold":
        point = manifold_point(decoder.tokens_for_trials(trials, stage), fmri, bank, voxels, temperature)
        best = trials[point.closest(top)]
        return RegionTokens(method, point.tokens, words.summary(best), best.tolist(),
                            {"temperature": temperature, "effective_images": round(point.effective_images, 2)})
    best = trials[top_trials(region_response(fmri, voxels), top)]
    tokens = np.asarray(bundle.image_embeddings[best], dtype=np.float32).mean(axis=0)
    return RegionTokens(method, tokens, words.summary(best), best.tolist(), {"top": top})


def describe_regions(decoder, regions: dict[str, np.ndarray], stage: str, method: str, *,
                     trials: np.ndarray | None = None, **options) -> dict[str, dict]:
    """{region: {"caption", "words", "images", **details}} by ``method``: one batch of captions
    (slow: the language model runs once per region)."""
    words = Labelling.of_terms(decoder.bundle.captions)
    made = {name: region_tokens(decoder, voxels, stage, method, trials=trials, words=words, **options)
            for name, voxels in regions.items()}
    captions = decoder.captions(np.stack([m.tokens for m in made.values()])) if made else []
    ids = [t["id"] for t in decoder.bundle.trials]
    return {name: {"caption": caption, "words": [{"term": w, "count": n} for w, n in m.words],
                   "images": [ids[t] for t in m.images], **m.details}
            for (name, m), caption in zip(made.items(), captions)}
