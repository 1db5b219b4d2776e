"""One trial decoded from each of its repeats (``test/fmri_repeats.npy``) beside the mean of all of them:
what the trial view's *Repeats* panel shows. Qt-free; the window runs :func:`trial_repeats` in a worker
(the captions need the language model)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from brainview.decoding.decoder import Decoded
from brainview.decoding.retrieval import rank_of

#: the panel's choices: the stored mean, then each repeat by number
MEAN = "mean"


@dataclass
class RepeatRow:
    """One pattern of the trial: ``source`` is ``"mean"`` or the repeat's number (1-based)."""

    source: str | int
    image_rank: int  # of the true image among every test image (1 = first)
    top_image: int  # the trial whose image ranks first
    caption: str | None
    decoded: Decoded  # its top-k images and captions


@dataclass
class TrialRepeats:
    trial: int
    stage: str
    rows: list[RepeatRow]  # the mean first, then every valid repeat
    #: do single repeats agree? the mean pairwise cosine of their predicted tokens (1: identical), and the
    #: fraction of pairs that retrieve the same first image; None with fewer than two repeats
    token_agreement: float | None
    top_image_agreement: float | None

    def row(self, source: str | int) -> RepeatRow | None:
        return next((r for r in self.rows if r.source == source), None)


def repeat_choices(bundle) -> list[str | int]:
    """What the panel offers: the mean, then repeat 1..max_repeats (none without single trials)."""
    return [MEAN, *range(1, bundle.max_repeats + 1)] if bundle.fmri_repeats is not None else [MEAN]


def trial_repeats(bundle, decoder, trial: int, stage: str, captions: bool = True, lock=None, k: int = 5) -> TrialRepeats:
    """Decode ``trial`` from the mean pattern and from each of its valid repeats: the true image's rank, the
    first image, a caption (``captions`` and a captioner; ``lock`` guards the language model) and how well
    the repeats agree. One prediction of 1 + repeats patterns: instant for the demo, a worker's job at NSD size."""
    if bundle.fmri_repeats is None:
        raise ValueError("the bundle holds only each image's mean pattern")
    count = int(bundle.repeat_counts[trial])
    patterns = np.vstack([np.asarray(bundle.fmri[trial], dtype=np.float32)[None],
                          np.asarray(bundle.fmri_repeats[trial, :count], dtype=np.float32)])
    tokens = decoder.model.predict(patterns, stage=stage)
    decoded = [decoder.decode(t, stage, k, caption=False) for t in tokens]
    texts: list[str | None] = [None] * len(patterns)
    if captions and decoder.can_caption:
        if lock is None:
            texts = list(decoder.captions(tokens))
        else:
            with lock:
                texts = list(decoder.captions(tokens))
    sources: list[str | int] = [MEAN, *range(1, count + 1)]
    rows = [RepeatRow(s, rank_of(d.image_profile, trial), int(d.images.indices[0]), texts[i], d)
            for i, (s, d) in enumerate(zip(sources, decoded))]
    singles = tokens[1:].reshape(count, -1)
    singles = singles / np.linalg.norm(singles, axis=1, keepdims=True)
    pairs = list(combinations(range(count), 2))
    token_agreement = float(np.mean([singles[a] @ singles[b] for a, b in pairs])) if pairs else None
    top_agreement = (float(np.mean([rows[a + 1].top_image == rows[b + 1].top_image for a, b in pairs]))
                     if pairs else None)
    return TrialRepeats(trial, stage, rows, token_agreement, top_agreement)
