"""Step 3: stage 1, ridge from patterns to the captioner's query tokens, alpha chosen on validation.

The estimator is the foundation's ``StageOneRidge`` (one eigendecomposition for the whole alpha
sweep, one alpha per query token by default, as the paper's per-token scikit-learn fits). It
sees the training and validation images only; the test rows are never loaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.nsd.data import split_data
from training.nsd.layout import WorkDir, progress


def fit(work: str | Path, *, alphas=None, alpha_per: str = "token", device: str = "auto") -> Path:
    """Fit stage 1 into ``WORK/stage1.safetensors``; skipped when it is there with the same settings."""
    from safetensors.numpy import save_file

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
    ridge = StageOneRidge(settings["alphas"], alpha_per=alpha_per, device=device)
    ridge.fit(train.fmri, train.tokens, val.fmri, val.tokens)
    save_file({"stage1.weight": np.ascontiguousarray(ridge.weight_), "stage1.bias": np.ascontiguousarray(ridge.bias_)},
              str(target))
    mse = ridge.validation_mse_.mean(axis=1)
    chosen_index = np.array([ridge.alphas.index(float(a)) for a in ridge.alpha_])
    chosen, counts = np.unique(ridge.alpha_, return_counts=True)
    work.write_log("fit", settings, device=device, n_train=len(train.fmri), n_val=len(val.fmri),
                   validation_mse_per_alpha={str(a): float(m) for a, m in zip(settings["alphas"], mse)},
                   chosen_alphas={str(float(a)): int(c) for a, c in zip(chosen, counts)},
                   validation_mse_chosen=float(np.take_along_axis(ridge.validation_mse_, chosen_index[None], 0).mean()))
    progress(f"fit: done, alphas chosen {dict(zip(chosen.tolist(), counts.tolist()))}")
    return target
