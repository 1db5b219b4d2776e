"""Captioning many trials from the command line on a slow machine: a seeded subset of them (``eval
--trials N``), progress after every batch, and what was captioned kept when the user presses Ctrl-C."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from brainview.errors import UserError

#: captions per batch: a CPU's Ctrl-C and progress wait for at most one batch
BATCH = 16


def seeded_subset(n_total: int, n: int | None, seed: int) -> np.ndarray:
    """``n`` of ``n_total`` trial indices drawn with ``seed``, in order; every trial for None."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    if n < 1:
        raise UserError("--trials must be at least 1")
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False))


def caption_all(decoder, tokens: np.ndarray,
                progress: Callable[[int, int], None] | None = None) -> tuple[list[str], bool]:
    """The decoder's captions of ``tokens`` batch by batch, ``progress(done, total)`` after each; on
    Ctrl-C the captions made so far and True (interrupted)."""
    captions: list[str] = []
    try:
        for lo in range(0, len(tokens), BATCH):
            captions += decoder.captions(tokens[lo:lo + BATCH])
            if progress is not None:
                progress(len(captions), len(tokens))
    except KeyboardInterrupt:
        return captions, True
    return captions, False
