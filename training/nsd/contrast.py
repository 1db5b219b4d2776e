"""Step 4: stage 2, the paper's contrastive tuning (eq. 1), selected on the validation images.

The trainer is ``brainview.decoding.stage2.fit_stage2``: it starts from the stage-1 ridge
weights, learns the text projection, and keeps the epoch with the best validation score. Each
training image offers its first ``captions_per_image`` COCO captions (COCO has at least five),
one drawn at random per step; validation uses the first.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from brainview.errors import UserError
from training.nsd.data import split_data
from training.nsd.layout import WorkDir, progress

LIGHTNING_ACCELERATORS = {"auto": "auto", "cpu": "cpu", "cuda": "gpu", "gpu": "gpu", "mps": "mps"}


def contrast(work: str | Path, *, device: str = "auto", epochs: int | None = None, batch_size: int | None = None,
             lr: float | None = None, captions_per_image: int = 5, **config) -> Path:
    """Fit stage 2 into ``WORK/stage2.safetensors``; skipped when it is there with the same settings."""
    from safetensors.numpy import load_file, save_file

    from brainview.decoding.stage2 import Stage2Config, fit_stage2

    work = WorkDir(work)
    if device not in LIGHTNING_ACCELERATORS:
        raise UserError(f"unknown device {device!r}; choose one of {', '.join(LIGHTNING_ACCELERATORS)}")
    overrides = {k: v for k, v in (("max_epochs", epochs), ("batch_size", batch_size), ("lr", lr)) if v is not None}
    stage_config = Stage2Config(accelerator=LIGHTNING_ACCELERATORS[device], verbose=True, **overrides, **config)
    settings = {**asdict(stage_config), "captions_per_image": captions_per_image}
    settings.pop("verbose")
    target = work / "stage2.safetensors"
    if target.exists() and work.log_path("contrast").is_file() and work.read_log("contrast")["settings"] == settings:
        progress("contrast: stage 2 is complete, nothing to do")
        return target
    work.require("fit", "stage1.safetensors")
    stage1 = load_file(str(work / "stage1.safetensors"))
    train, val = split_data(work, "train"), split_data(work, "val")
    k = min(captions_per_image, train.min_captions, val.min_captions)
    progress(f"contrast: stage 2 on {len(train.fmri)} training images, selected on {len(val.fmri)} validation images")
    result = fit_stage2(stage1["stage1.weight"], stage1["stage1.bias"], train.fmri, train.tokens,
                        train.texts_per_image(k), val.fmri, val.tokens, val.texts_per_image(k), stage_config)
    save_file({name: np.ascontiguousarray(value, dtype=np.float32) for name, value in result.tensors().items()},
              str(target))
    work.write_log("contrast", settings, captions_per_image_used=k, best_epoch=result.best_epoch,
                   temperature=result.temperature, history=result.history)
    progress(f"contrast: done, best epoch {result.best_epoch}")
    return target
