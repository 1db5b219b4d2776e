"""Vector helpers shared by retrieval, metrics and the brain model."""

from __future__ import annotations

import numpy as np


def unit_norm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x`` scaled to unit L2 norm along ``axis``; all-zero vectors stay zero instead of NaN."""
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), 1e-12)
