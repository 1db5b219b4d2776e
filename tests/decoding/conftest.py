"""Shared fixtures for the decoding tests: tiny BLIP-2 models of the real classes, saved to disk."""

from __future__ import annotations

import pytest

TINY_CORPUS = [
    "a red ball on the green grass",
    "a smiling face behind a window",
    "a street sign with large white words",
    "two people walking on a beach",
    "a small blue car parked near a house",
    "a dog running across a field",
    "a bowl of fruit on a wooden table",
    "a man holding a yellow umbrella",
]

# small enough that a forward pass takes milliseconds; query_dim != lm_hidden so that
# "before language_projection" is visible in the shapes
TINY_CONFIG = dict(n_query=8, image_size=32, patch_size=8, query_dim=32, lm_hidden=48, text_dim=16)


@pytest.fixture(scope="session")
def tiny_vlm_config():
    """The keyword arguments ``tiny_vlm_dir`` was built with."""
    return dict(TINY_CONFIG)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from brainview.decoding.tiny_vlm import train_tokenizer

    return train_tokenizer(TINY_CORPUS * 3, vocab_size=400)


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory, tiny_tokenizer):
    """Folder with ``captioner/`` and ``retrieval/``: tiny random BLIP-2 models saved with save_pretrained."""
    from brainview.decoding.tiny_vlm import save_tiny_blip2

    root = tmp_path_factory.mktemp("tiny_vlm")
    save_tiny_blip2(root, tiny_tokenizer, seed=0, **TINY_CONFIG)
    return root


@pytest.fixture(scope="session")
def tiny_blip2_adapter(tiny_vlm_dir):
    """A ``Blip2Adapter`` on the tiny models, on the CPU."""
    from brainview.decoding.blip2 import Blip2Adapter

    return Blip2Adapter.load(tiny_vlm_dir / "captioner", tiny_vlm_dir / "retrieval", device="cpu")
