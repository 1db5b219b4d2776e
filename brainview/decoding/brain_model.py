"""The brain model: linear maps from an fMRI pattern to BLIP-2 query tokens, per stage.

This is the one class that training produces (``to_tensors``) and the app loads
(``from_bundle``): stage 1 is the ridge fit, stage 2 the contrastively tuned copy plus its text
projection. Prediction is ``(weight @ x + bias).reshape(n_query, query_dim)`` (DESIGN.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainview.bundle.format import STAGES
from brainview.decoding.vectors import unit_norm


@dataclass
class LinearStage:
    weight: np.ndarray  # (n_query * query_dim, n_voxels)
    bias: np.ndarray  # (n_query * query_dim,)


class BrainModel:
    """Per-stage linear decoders with a stage-2 projection into the text space."""

    def __init__(self, stages: dict[str, LinearStage], n_query: int, query_dim: int,
                 projection_weight: np.ndarray | None = None, projection_bias: np.ndarray | None = None):
        unknown = set(stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stages {sorted(unknown)}")
        self.stages = stages
        self.n_query = n_query
        self.query_dim = query_dim
        self.projection_weight = projection_weight
        self.projection_bias = projection_bias

    @classmethod
    def from_bundle(cls, bundle) -> "BrainModel":
        # the bundle keeps its tensors memory-mapped in their stored dtype; the model computes in float32
        w = {k: np.asarray(v, dtype=np.float32) for k, v in bundle.weights.items()}
        stages = {s: LinearStage(w[f"{s}.weight"], w[f"{s}.bias"]) for s in bundle.stages}
        return cls(stages, bundle.n_query, bundle.query_dim,
                   w.get("stage2.projection.weight"), w.get("stage2.projection.bias"))

    def to_tensors(self) -> dict[str, np.ndarray]:
        """Tensors in the layout of ``brain_model.safetensors``."""
        out = {}
        for name, stage in self.stages.items():
            out[f"{name}.weight"] = stage.weight
            out[f"{name}.bias"] = stage.bias
        if self.projection_weight is not None:
            out["stage2.projection.weight"] = self.projection_weight
            out["stage2.projection.bias"] = self.projection_bias
        return out

    @property
    def n_voxels(self) -> int:
        return next(iter(self.stages.values())).weight.shape[1]

    @property
    def has_text_projection(self) -> bool:
        return self.projection_weight is not None

    def stage(self, name: str) -> LinearStage:
        if name not in self.stages:
            raise KeyError(f"this brain model has no {name}; it has {', '.join(self.stages)}")
        return self.stages[name]

    def predict(self, patterns: np.ndarray, stage: str = "stage2", batch_size: int = 512) -> np.ndarray:
        """Query tokens (n, n_query, query_dim) for patterns (n, n_voxels) or one pattern (n_voxels,)."""
        single = np.ndim(patterns) == 1
        x = np.atleast_2d(patterns)
        lin = self.stage(stage)
        out = np.empty((x.shape[0], lin.weight.shape[0]), dtype=np.float32)
        for start in range(0, x.shape[0], batch_size):
            chunk = np.asarray(x[start:start + batch_size], dtype=np.float32)
            out[start:start + batch_size] = chunk @ lin.weight.T + lin.bias
        tokens = out.reshape(-1, self.n_query, self.query_dim)
        return tokens[0] if single else tokens

    def project_text(self, tokens: np.ndarray) -> np.ndarray:
        """Stage-2 projection of query tokens into the text space, L2-normalized per token."""
        if self.projection_weight is None:
            raise ValueError("this brain model has no stage-2 text projection")
        projected = np.asarray(tokens, dtype=np.float32) @ self.projection_weight.T + self.projection_bias
        return unit_norm(projected)
