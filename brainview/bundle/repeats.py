"""The optional single trials of a bundle: every repeat of each test image (``test/fmri_repeats.npy``)
and how many of each trial's slots are valid (``test/fmri_repeat_counts.npy``), DESIGN.md §3.

NSD shows a test image up to three times and ``test/fmri.npy`` holds their mean; the repeats let a
user see what a brain-computer interface gets from one trial. Both files come together or not at
all; a bundle without them is valid and unchanged. Slots past a trial's count are never read, so a
writer may leave anything there (zeros, NaN).
"""

from __future__ import annotations

import numpy as np

from brainview.bundle import format as F
from brainview.bundle.files import BundleError, BundleFiles

#: bytes of repeats checked for NaN/inf at a time
_CHUNK_BYTES = 16 << 20


def read_repeats(files: BundleFiles, n_trials: int, n_voxels: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(repeats memory-mapped (n_trials, max_repeats, n_voxels), counts int64 (n_trials,)), or None when the
    bundle has neither file; every valid slot's values checked finite."""
    present = [rel for rel in (F.FMRI_REPEATS, F.FMRI_REPEAT_COUNTS)
               if (files.root / rel).exists() or (files.root / rel).is_symlink()]
    if not present:
        return None
    if len(present) == 1:
        other = F.FMRI_REPEAT_COUNTS if present[0] == F.FMRI_REPEATS else F.FMRI_REPEATS
        raise BundleError(present[0], f"comes with {other} (how many repeats each trial has); give both or neither")
    repeats = files.npy(F.FMRI_REPEATS, (n_trials, None, n_voxels), ("float16", "float32"), {1: F.MAX_REPEATS},
                        ("n_trials", "max_repeats", "n_voxels"))
    if repeats.shape[1] == 0:
        raise BundleError(F.FMRI_REPEATS, "has no repeat slots (max_repeats = 0)")
    counts = files.npy(F.FMRI_REPEAT_COUNTS, (n_trials,), ("uint8", "int16", "int32", "int64"), None, ("n_trials",))
    counts = np.asarray(counts, dtype=np.int64)
    bad = (counts < 1) | (counts > repeats.shape[1])
    if bad.any():
        trial = int(np.argmax(bad))
        raise BundleError(F.FMRI_REPEAT_COUNTS, f"trial {trial} has {int(counts[trial])} repeats; each trial has "
                                                f"1 to {repeats.shape[1]} (the slots of {F.FMRI_REPEATS})")
    step = max(1, _CHUNK_BYTES // max(1, repeats.shape[1] * n_voxels * repeats.dtype.itemsize))
    for start in range(0, n_trials, step):
        block = np.asarray(repeats[start:start + step])
        valid = np.arange(repeats.shape[1])[None, :] < counts[start:start + step, None]
        finite = np.isfinite(block).all(axis=2) | ~valid
        if not finite.all():
            trial, slot = (int(i) for i in np.argwhere(~finite)[0])
            raise BundleError(F.FMRI_REPEATS, f"contains NaN or infinite values (trial {start + trial}, "
                                              f"repeat {slot + 1})")
    return repeats, counts


def window_patterns(repeats: np.ndarray, counts: np.ndarray, size: int, start: int) -> np.ndarray:
    """Per trial, the mean of ``size`` of its valid repeats, beginning with repeat ``start`` (wrapping
    around its count): float32 (n_trials, n_voxels). A trial with fewer than ``size`` repeats gives the
    mean of all of them. ``start`` 0..max_repeats-1 takes every single repeat (``size`` 1), or with three
    repeats every pair (``size`` 2), once each."""
    if size < 1:
        raise ValueError("a pattern is the mean of at least one repeat")
    counts = np.asarray(counts, dtype=np.int64)
    out = np.zeros((repeats.shape[0], repeats.shape[2]), dtype=np.float32)
    used = np.minimum(size, counts)
    for offset in range(min(size, repeats.shape[1])):
        take = offset < used
        slot = (start + offset) % counts
        rows = np.flatnonzero(take)
        out[rows] += np.asarray(repeats[rows, slot[rows]], dtype=np.float32)
    return out / used[:, None].astype(np.float32)
