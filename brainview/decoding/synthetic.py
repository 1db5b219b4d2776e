"""Synthetic brain patterns for the ROI interpretability analysis.

``roi_tokens`` is the paper's analysis (DESIGN.md §4): x = 1 on the ROI, 0 elsewhere; each query
token of ``weight @ x`` scaled to unit L2 norm, times ``scale``, plus the bias. ``lesion`` and
``boost`` start from a real trial instead and change only the selected voxels.
"""

from __future__ import annotations

import numpy as np

from brainview.decoding.brain_model import BrainModel
from brainview.decoding.vectors import unit_norm

MODES = ("roi", "lesion", "boost")
TRIAL_MODES = ("lesion", "boost")  # the modes that change the current trial's pattern
DEFAULT_BOOST = 3.0


def roi_indicator(voxels: np.ndarray, n_voxels: int) -> np.ndarray:
    x = np.zeros(n_voxels, dtype=np.float32)
    x[np.asarray(voxels, dtype=np.int64)] = 1.0
    return x


def roi_tokens(model: BrainModel, voxels: np.ndarray, scale: float = 11.0, stage: str = "stage2",
               summed: np.ndarray | None = None) -> np.ndarray:
    """Query tokens (n_query, query_dim) of the paper's synthetic ROI pattern; ``summed``, when
    known, is ``weight[:, unique voxels].sum(axis=1)`` (the decoder caches it)."""
    voxels = np.unique(np.asarray(voxels, dtype=np.int64))
    if voxels.size == 0:
        raise ValueError("the selection is empty: choose at least one voxel")
    lin = model.stage(stage)
    raw = (lin.columns(voxels).sum(axis=1) if summed is None else summed).reshape(model.n_query, model.query_dim)
    return (unit_norm(raw) * scale + lin.bias.reshape(model.n_query, model.query_dim)).astype(np.float32)


def lesion(pattern: np.ndarray, voxels: np.ndarray) -> np.ndarray:
    """The trial's pattern with the selected voxels silenced (set to 0, the z-scored baseline)."""
    out = np.array(pattern, dtype=np.float32, copy=True)
    out[np.asarray(voxels, dtype=np.int64)] = 0.0
    return out


def boost(pattern: np.ndarray, voxels: np.ndarray, factor: float = DEFAULT_BOOST) -> np.ndarray:
    """The trial's pattern with the selected voxels multiplied by ``factor``."""
    out = np.array(pattern, dtype=np.float32, copy=True)
    idx = np.asarray(voxels, dtype=np.int64)
    out[idx] *= factor
    return out


def synthetic_tokens(model: BrainModel, mode: str, voxels: np.ndarray, *, stage: str = "stage2",
                     scale: float = 11.0, pattern: np.ndarray | None = None,
                     factor: float = DEFAULT_BOOST, base: np.ndarray | None = None,
                     summed: np.ndarray | None = None) -> np.ndarray:
    """Query tokens for a selection in one of ``MODES``; lesion and boost need the trial's pattern.

    ``base``, the trial's own predicted tokens, makes lesion and boost cost the selection's size:
    only the selected voxels change, so only their weight columns are read.
    """
    if mode == "roi":
        return roi_tokens(model, voxels, scale=scale, stage=stage, summed=summed)
    if pattern is None:
        raise ValueError(f"mode {mode!r} starts from a real trial: pass its pattern")
    if mode not in ("lesion", "boost"):
        raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
    changed = lesion(pattern, voxels) if mode == "lesion" else boost(pattern, voxels, factor)
    if base is None:
        return model.predict(changed, stage=stage)
    voxels = np.unique(np.asarray(voxels, dtype=np.int64))
    return model.predict_change(base, voxels, changed[voxels] - pattern[voxels], stage=stage)
