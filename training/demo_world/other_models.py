"""Two other "models" of the demo world, whose ranking is known, for ``brainview compare`` and the app's
model captions: ``nearest-neighbour`` captions each test image with the first caption of the most
similar training image (pixels; it never sees the scene's attributes), ``shuffled`` with the caption
of a training image drawn at random (a chance-level captioner), ``constant`` with the training set's
most frequent first caption for every image. Written as JSON dicts trial id →
caption beside the demo bundle (``resources/demo_captions``); the bundle itself is not rebuilt.

``python -m training.demo_world captions [--demo resources/demo] [--out resources/demo_captions]``
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from brainview.bundle import open_bundle
from training.demo_world.scenes import split_scenes

MODELS = ("nearest-neighbour", "shuffled", "constant")


def nearest_neighbour_captions(train_images: np.ndarray, train_captions: list[list[str]],
                               test_images: np.ndarray) -> list[str]:
    """The first caption of each test image's nearest training image (Euclidean distance of the pixels)."""
    train = train_images.reshape(len(train_images), -1).astype(np.float64) / 255.0
    test = test_images.reshape(len(test_images), -1).astype(np.float64) / 255.0
    distances = (test ** 2).sum(1)[:, None] - 2.0 * test @ train.T + (train ** 2).sum(1)[None, :]
    return [train_captions[j][0] for j in distances.argmin(axis=1)]


def shuffled_captions(train_captions: list[list[str]], n: int, seed: int) -> list[str]:
    """The first caption of a training image drawn at random for each of ``n`` test images."""
    picks = np.random.default_rng(seed).integers(0, len(train_captions), size=n)
    return [train_captions[j][0] for j in picks]


def constant_captions(train_captions: list[list[str]], n: int) -> list[str]:
    """The most frequent first caption of the training images, for every one of ``n`` test images."""
    firsts = [c[0] for c in train_captions]
    return [max(sorted(set(firsts)), key=firsts.count)] * n


def write_other_models(demo: str | Path, out: str | Path) -> list[Path]:
    bundle = open_bundle(demo)
    seed, size = bundle.manifest["provenance"]["seed"], bundle.manifest["provenance"]["size"]
    splits = split_scenes(seed, size)
    test, train = splits["test"], splits["train"]
    if [t["scene"] for t in bundle.trials] != test.attributes:
        raise SystemExit(f"{demo} was not built from the scenes of seed {seed}, size {size}")
    ids = [t["id"] for t in bundle.trials]
    captions = {"nearest-neighbour": nearest_neighbour_captions(train.images, train.captions, test.images),
                "shuffled": shuffled_captions(train.captions, len(ids), seed),
                "constant": constant_captions(train.captions, len(ids))}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in MODELS:
        path = out / f"{name}.json"
        path.write_text(json.dumps(dict(zip(ids, captions[name])), indent=1) + "\n", encoding="utf-8")
        written.append(path)
    return written
