"""The brain model: linear maps from an fMRI pattern to BLIP-2 query tokens, per stage.

This is the one class that training produces (``to_tensors``) and the app loads
(``from_bundle``): stage 1 is the ridge fit, stage 2 the contrastively tuned copy plus its text
projection. Prediction is ``(weight @ x + bias).reshape(n_query, query_dim)`` (DESIGN.md §3).

Weights stay in the dtype the bundle stores (float16 at NSD size: 773 MB per stage, memory-mapped)
and are never copied whole to float32: prediction converts a block of rows at a time and runs
BLAS on it, so memory grows by one block, not by 1.5 GB per stage. On a GPU (:meth:`BrainModel.to`)
the weights live once on the device in half precision.
"""

from __future__ import annotations

import contextlib
import mmap
from dataclasses import dataclass

import numpy as np

from brainview.bundle.format import STAGES
from brainview.decoding.vectors import unit_norm


#: weight rows converted to float32 at a time (1024 × 15,724 voxels: 64 MB)
BLOCK_ROWS = 1024


def _drop_pages(array: np.ndarray) -> None:
    """Unmap the pages of a read-only memory map that a pass has read: the kernel keeps them in its
    page cache (reading them again is cheap) but they stop counting in this process's memory, so a
    pass over 1.5 GB of weights does not leave 1.5 GB resident."""
    handle = getattr(array, "_mmap", None)
    if handle is not None and hasattr(mmap, "MADV_DONTNEED"):
        with contextlib.suppress(OSError, ValueError):
            handle.madvise(mmap.MADV_DONTNEED)


@dataclass
class LinearStage:
    weight: np.ndarray  # (n_query * query_dim, n_voxels), in the stored dtype
    bias: np.ndarray  # (n_query * query_dim,), float32
    device_weight: object = None  # a torch tensor on the GPU (half precision), after BrainModel.to

    def columns(self, voxels: np.ndarray) -> np.ndarray:
        """``weight[:, voxels]`` in float32 (n_out, len(voxels)): what a change on those voxels moves."""
        return np.asarray(self.weight[:, np.asarray(voxels, dtype=np.int64)], dtype=np.float32)


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
        # big weights stay memory-mapped in their stored dtype; the small tensors are read as float32
        w = bundle.weights
        big = {f"{s}.weight" for s in bundle.stages}
        small = {k: np.asarray(v, dtype=np.float32) for k, v in w.items() if k not in big}
        stages = {s: LinearStage(w[f"{s}.weight"], small[f"{s}.bias"]) for s in bundle.stages}
        return cls(stages, bundle.n_query, bundle.query_dim,
                   small.get("stage2.projection.weight"), small.get("stage2.projection.bias"))

    def to(self, device) -> "BrainModel":
        """Put the stage weights on a torch ``device`` once, in half precision (GPU); "cpu" undoes it.

        Copied a block at a time, so host memory never holds a float32 copy either.
        """
        import torch

        device = torch.device(device)
        for lin in self.stages.values():
            if device.type == "cpu":
                lin.device_weight = None
                continue
            on = torch.empty(lin.weight.shape, dtype=torch.float16, device=device)
            for start in range(0, lin.weight.shape[0], BLOCK_ROWS):
                block = np.asarray(lin.weight[start:start + BLOCK_ROWS], dtype=np.float16)
                on[start:start + len(block)] = torch.from_numpy(block).to(device)
            lin.device_weight = on
        return self

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

    def predict(self, patterns: np.ndarray, stage: str = "stage2") -> np.ndarray:
        """Query tokens (n, n_query, query_dim) for patterns (n, n_voxels) or one pattern (n_voxels,)."""
        steps = self.iter_predict(patterns, stage)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    def iter_predict(self, patterns: np.ndarray, stage: str = "stage2"):
        """:meth:`predict` as a generator for a worker: yields ``(done_rows, total_rows)`` after each
        block of weight rows and returns the tokens. One pass over the weights whatever the number
        of patterns, so predict every trial at once rather than trial by trial."""
        single = np.ndim(patterns) == 1
        x = np.asarray(np.atleast_2d(patterns), dtype=np.float32)
        lin = self.stage(stage)
        n_out = lin.weight.shape[0]
        if lin.device_weight is not None:
            out = self._predict_on_device(lin, x)
            yield n_out, n_out
        else:
            out = np.empty((x.shape[0], n_out), dtype=np.float32)
            for start in range(0, n_out, BLOCK_ROWS):
                block = lin.weight[start:start + BLOCK_ROWS]
                if block.dtype != np.float32:  # numpy has no fast float16 GEMM: convert one block
                    block = block.astype(np.float32)
                np.matmul(x, block.T, out=out[:, start:start + len(block)])
                _drop_pages(lin.weight)
                yield min(start + BLOCK_ROWS, n_out), n_out
            out += lin.bias
        tokens = out.reshape(-1, self.n_query, self.query_dim)
        return tokens[0] if single else tokens

    def predict_outputs(self, patterns: np.ndarray, outputs: np.ndarray, stage: str = "stage2") -> np.ndarray:
        """Only the flat outputs ``outputs`` of the patterns' tokens, (n, len(outputs)): reads those weight
        rows alone, so checking a prediction cache costs a fraction of a pass."""
        lin = self.stage(stage)
        x = np.asarray(np.atleast_2d(patterns), dtype=np.float32)
        outputs = np.asarray(outputs, dtype=np.int64)
        return x @ np.asarray(lin.weight[outputs], dtype=np.float32).T + lin.bias[outputs]

    def _predict_on_device(self, lin: LinearStage, x: np.ndarray) -> np.ndarray:
        import torch

        weight = lin.device_weight
        with torch.no_grad():
            out = torch.from_numpy(x).to(weight.device, torch.float16) @ weight.T
        return out.float().cpu().numpy() + lin.bias

    def predict_change(self, tokens: np.ndarray, voxels: np.ndarray, delta: np.ndarray,
                       stage: str = "stage2") -> np.ndarray:
        """Tokens of a pattern that differs from a predicted one by ``delta`` on ``voxels`` only:
        ``tokens + weight[:, voxels] @ delta``, which reads only those columns (a lesion of an ROI
        costs its size, not a pass over all the weights)."""
        lin = self.stage(stage)
        change = lin.columns(voxels) @ np.asarray(delta, dtype=np.float32)
        return np.asarray(tokens, dtype=np.float32) + change.reshape(self.n_query, self.query_dim)

    def project_text(self, tokens: np.ndarray) -> np.ndarray:
        """Stage-2 projection of query tokens into the text space, L2-normalized per token."""
        if self.projection_weight is None:
            raise ValueError("this brain model has no stage-2 text projection")
        projected = np.asarray(tokens, dtype=np.float32) @ self.projection_weight.T + self.projection_bias
        return unit_norm(projected)
