"""The demo's other models: the shipped caption files are what the script writes, and the nearest-neighbour
captioner returns the caption of the nearest training image."""

from __future__ import annotations

import json

import numpy as np

from brainview.paths import demo_bundle_path, demo_captions_dir
from training.demo_world.__main__ import main
from training.demo_world.other_models import MODELS, nearest_neighbour_captions


def test_shipped_files_are_the_scripts_output(tmp_path):
    assert main(["captions", "--demo", str(demo_bundle_path()), "--out", str(tmp_path)]) == 0
    for name in MODELS:
        assert json.loads((tmp_path / f"{name}.json").read_text()) == \
            json.loads((demo_captions_dir() / f"{name}.json").read_text()), name


def test_nearest_neighbour_returns_the_nearest_images_caption():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 255, size=(5, 4, 4, 3), dtype=np.uint8)
    test = np.clip(train[[3, 1]].astype(int) + rng.integers(-3, 4, size=(2, 4, 4, 3)), 0, 255).astype(np.uint8)
    captions = [[f"caption {i}"] for i in range(5)]
    assert nearest_neighbour_captions(train, captions, test) == ["caption 3", "caption 1"]
