"""Step 3: stage 1, ridge from patterns to the captioner's query tokens, alpha chosen on validation.

The estimator is the foundation's ``StageOneRidge`` (one eigendecomposition for the whole alpha
sweep, one alpha per query token by default, as the paper's per-token scikit-learn fits). It
sees the training and validation images only; the test rows are never loaded.

The weight matrix (24,576 × 15,724 float32, 1.5 GB for subject 1) is written to the safetensors
file block by block as the solver makes it, so it is never whole in memory, and the solver
centres the loaded training arrays in place (``overwrite``) instead of copying them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.nsd.data import split_data
from training.nsd.layout import WorkDir, progress

_SAFETENSORS_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.float64): "F64"}


class SafetensorsWriter:
    """A safetensors file whose tensors are written piecewise (rows at an offset), then renamed into place.

    The layout is the format's own (8-byte header length, JSON header, raw little-endian data),
    so ``safetensors.safe_open`` and ``load_file`` read it as any other.
    """

    def __init__(self, path: Path, tensors: dict[str, tuple[tuple[int, ...], np.dtype]]):
        import json

        self.path, self.tmp = Path(path), Path(path).with_name(Path(path).name + ".tmp")
        header, offset, self.specs = {}, 0, {}
        for name, (shape, dtype) in tensors.items():
            dtype = np.dtype(dtype)
            size = int(np.prod(shape)) * dtype.itemsize
            header[name] = {"dtype": _SAFETENSORS_DTYPES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
            self.specs[name] = (shape, dtype, offset)
            offset += size
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
        self.data_start = 8 + len(text)
        self.file = open(self.tmp, "wb")
        self.file.write(len(text).to_bytes(8, "little") + text)
        self.file.truncate(self.data_start + offset)

    def write(self, name: str, start_row: int, rows: np.ndarray) -> None:
        shape, dtype, offset = self.specs[name]
        row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
        self.file.seek(self.data_start + offset + start_row * row_bytes)
        self.file.write(np.ascontiguousarray(rows, dtype=dtype.newbyteorder("<")).tobytes())

    def close(self) -> None:
        self.file.close()
        self.tmp.replace(self.path)


def fit(work: str | Path, *, alphas=None, alpha_per: str = "token", device: str = "auto") -> Path:
    """Fit stage 1 into ``WORK/stage1.safetensors``; skipped when it is there with the same settings."""
    from brainview.decoding.ridge import DEFAULT_ALPHAS, StageOneRidge

    work = WorkDir(work)
    settings = {"alphas": [float(a) for a in (alphas or DEFAULT_ALPHAS)], "alpha_per": alpha_per}
    target = work / "stage1.safetensors"
    if target.exists() and work.log_path("fit").is_file() and work.read_log("fit")["settings"] == settings:
        progress("fit: stage 1 is complete, nothing to do")
        return target
    train, val = split_data(work, "train"), split_data(work, "val")
    progress(f"fit: ridge on {len(train.fmri)} training images × {train.fmri.shape[1]} voxels, "
             f"{len(settings['alphas'])} alphas chosen on {len(val.fmri)} validation images")
    n_out, n_voxels = int(np.prod(train.tokens.shape[1:])), train.fmri.shape[1]
    writer = SafetensorsWriter(target, {"stage1.weight": ((n_out, n_voxels), np.float32),
                                        "stage1.bias": ((n_out,), np.float32)})
    ridge = StageOneRidge(settings["alphas"], alpha_per=alpha_per, device=device)
    try:
        # overwrite: the loaded training arrays are this function's own, centred in place (no copies)
        ridge.fit(train.fmri, train.tokens, val.fmri, val.tokens, overwrite=True,
                  write_weight=lambda start, rows: writer.write("stage1.weight", start, rows))
        writer.write("stage1.bias", 0, ridge.bias_)
    except BaseException:
        writer.file.close()
        writer.tmp.unlink(missing_ok=True)
        raise
    writer.close()
    mse = ridge.validation_mse_.mean(axis=1)
    chosen_index = np.array([ridge.alphas.index(float(a)) for a in ridge.alpha_])
    chosen, counts = np.unique(ridge.alpha_, return_counts=True)
    work.write_log("fit", settings, device=device, n_train=len(train.fmri), n_val=len(val.fmri),
                   validation_mse_per_alpha={str(a): float(m) for a, m in zip(settings["alphas"], mse)},
                   chosen_alphas={str(float(a)): int(c) for a, c in zip(chosen, counts)},
                   validation_mse_chosen=float(np.take_along_axis(ridge.validation_mse_, chosen_index[None], 0).mean()))
    progress(f"fit: done, alphas chosen {dict(zip(chosen.tolist(), counts.tolist()))}")
    return target
