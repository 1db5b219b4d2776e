"""What a model folder's checkpoint holds, read from its safetensors headers only (no torch, no data):
enough to say before loading how much memory the captioner will take.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

#: what captioning from (predicted) query tokens runs; the vision tower (986 M parameters in
#: blip2-opt-2.7b) and the Q-Former never run, so the app does not load them
CAPTION_PARTS = ("language_projection.", "language_model.")


def checkpoint_shards(folder: str | os.PathLike) -> list[Path]:
    """The safetensors files of a model folder (one, or the shards its index names); [] for others."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            names = json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()
        except (OSError, ValueError, KeyError, AttributeError):
            return []
        return sorted({folder / name for name in names})
    single = folder / "model.safetensors"
    return [single] if single.is_file() else []


def caption_parts_size(folder: str | os.PathLike) -> tuple[int, int] | None:
    """(parameters captioning needs, parameters of the whole checkpoint), or None when the folder
    holds no readable safetensors checkpoint."""
    from safetensors import safe_open

    shards = checkpoint_shards(folder)
    if not shards:
        return None
    needed = total = 0
    try:
        for shard in shards:
            with safe_open(str(shard), framework="np") as handle:
                for key in handle.keys():
                    n = int(np.prod(handle.get_slice(key).get_shape()))
                    total += n
                    needed += n if key.startswith(CAPTION_PARTS) else 0
    except Exception:  # noqa: BLE001 - a damaged checkpoint: unknown here, loading it says what is wrong
        return None
    return needed, total
