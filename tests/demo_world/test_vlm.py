"""The demo world's tiny BLIP-2 models: the reduced ("small") training produces folders that the
app's adapter opens exactly like real checkpoints. Quality is not checked here (the full build
reports METEOR); this checks the plumbing, the shapes and determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from brainview.decoding.blip2 import Blip2Adapter
from brainview.decoding.tiny_vlm import build_tiny_blip2, train_tokenizer
from training.demo_world.scenes import generate_scenes
from training.demo_world.vlm import (
    LABEL_CLASSES, N_QUERY, RECIPES, copy_representation, image_labels, pretrain_image_encoder, train_demo_vlm,
    whiten_patch_embedding,
)


@pytest.fixture(scope="module")
def scenes():
    all_scenes = generate_scenes(80, seed=3)
    return all_scenes.subset(np.arange(64)), all_scenes.subset(np.arange(64, 80))


@pytest.fixture(scope="module")
def trained(scenes, tmp_path_factory):
    train, val = scenes
    return train_demo_vlm(train, val, tmp_path_factory.mktemp("vlm"), seed=5, size="small")


def test_saved_models_open_with_the_adapter_and_caption(trained, scenes):
    train, val = scenes
    assert set(trained) == {"captioner", "retrieval"}
    adapter = Blip2Adapter.load(trained["captioner"], trained["retrieval"], device="cpu")
    query_dim = RECIPES["small"].model["query_dim"]
    tokens = adapter.image_query_tokens(val.images[:4])
    assert tokens.shape == (4, N_QUERY, query_dim) and np.isfinite(tokens).all()
    captions = adapter.caption(tokens, max_new_tokens=8)
    assert len(captions) == 4 and all(isinstance(c, str) for c in captions)
    texts = adapter.text_embeddings([c[0] for c in val.captions[:3]])
    assert texts.shape == (3, RECIPES["small"].model["text_dim"])
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)


def test_captioner_starts_from_the_retrieval_representation(scenes):
    """Vision model, queries and the Q-Former's query path are copied; the text-only layers are not needed."""
    tokenizer = train_tokenizer(c for caps in scenes[0].captions for c in caps)
    captioner, retrieval = build_tiny_blip2(tokenizer, seed=0, n_query=N_QUERY, **RECIPES["small"].model)
    copy_representation(retrieval, captioner)
    copied = captioner.state_dict()
    for key, value in retrieval.state_dict().items():
        if key.startswith(("vision_model.", "query_tokens")) or (key.startswith("qformer.") and key in copied):
            assert torch.equal(copied[key], value), key
    assert any(k.startswith("qformer.") and k not in copied for k in retrieval.state_dict())  # text path


def test_both_models_share_the_frozen_pretrained_image_encoder(trained):
    """BLIP-2 keeps its pre-trained image encoder frozen: the captioner's vision weights are the retrieval model's."""
    captioner, retrieval = (load_file(str(trained[role] / "model.safetensors")) for role in ("captioner", "retrieval"))
    vision = [key for key in retrieval if key.startswith("vision_model.")]
    assert vision
    for key in vision:
        np.testing.assert_array_equal(captioner[key], retrieval[key], err_msg=key)


def test_image_encoder_pretraining_learns_the_labels_and_freezes(scenes):
    """30 epochs on 64 scenes fit their kinds well above chance, and the encoder ends frozen."""
    import dataclasses

    from transformers import Blip2VisionConfig, Blip2VisionModel

    train = scenes[0]
    labels = image_labels(train)
    assert labels.shape == (64, 3) and all(labels[:, j].max() < n for j, n in enumerate(LABEL_CLASSES.values()))
    torch.manual_seed(0)
    model = Blip2VisionModel(Blip2VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                               num_attention_heads=2, image_size=64, patch_size=16))
    pixels = torch.from_numpy(train.images).permute(0, 3, 1, 2).float() / 127.5 - 1
    recipe = dataclasses.replace(RECIPES["small"], pretrain_epochs=30, pretrain_batch=16, shift=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    accuracy = pretrain_image_encoder(model, pixels, labels, recipe, torch.Generator().manual_seed(0),
                                      val=(pixels, labels))
    assert accuracy["kind"] > 0.3 and accuracy["place"] > 0.9  # 10 kinds, 4 places
    assert not any(p.requires_grad for p in model.parameters()) and not model.training
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_tokenizer_is_deterministic_and_saved_with_the_models(trained, scenes):
    from transformers import AutoTokenizer

    corpus = [c for caps in scenes[0].captions for c in caps]
    first, second = train_tokenizer(corpus), train_tokenizer(corpus)
    assert first.get_vocab() == second.get_vocab()
    saved = AutoTokenizer.from_pretrained(trained["captioner"], local_files_only=True)
    assert saved.get_vocab() == first.get_vocab()
    assert saved(corpus[:5])["input_ids"] == first(corpus[:5])["input_ids"]


def test_training_is_deterministic(scenes, tmp_path):
    train, val = scenes[0].subset(np.arange(32)), scenes[1]
    first = train_demo_vlm(train, val, tmp_path / "a", seed=1, size="small")
    second = train_demo_vlm(train, val, tmp_path / "b", seed=1, size="small")
    for role in ("captioner", "retrieval"):
        a, b = (load_file(str(p[role] / "model.safetensors")) for p in (first, second))
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{role} {key}")


def test_unknown_size_is_refused(scenes, tmp_path):
    with pytest.raises(ValueError, match="size"):
        train_demo_vlm(*scenes, tmp_path, seed=0, size="huge")


def test_patch_whitening_gives_unit_variance_channels(scenes):
    from transformers import Blip2VisionConfig, Blip2VisionModel

    model = Blip2VisionModel(Blip2VisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                               num_attention_heads=2, image_size=64, patch_size=8))
    pixels = torch.from_numpy(scenes[0].images).permute(0, 3, 1, 2).float() / 255
    whiten_patch_embedding(model, pixels)
    with torch.no_grad():
        channels = model.embeddings.patch_embedding(pixels).permute(1, 0, 2, 3).reshape(16, -1)
    np.testing.assert_allclose(channels.mean(1).numpy(), 0.0, atol=1e-3)
    assert torch.all((channels.std(1) > 0.8) & (channels.std(1) <= 1.01))


def test_answer_stage_trains_only_the_language_side(scenes):
    """Vision model, queries and Q-Former stay bit-identical (the brain model's targets do not move);
    the language projection and OPT learn, and the stage depends on nothing but its seed."""
    import dataclasses

    from training.demo_world.vlm import _pixel_values, train_answer_stage

    train = scenes[0].subset(np.arange(32))
    tokenizer = train_tokenizer(c for caps in train.captions for c in caps)
    recipe = dataclasses.replace(RECIPES["small"], qa_epochs=2, qa_batch=16)
    results = []
    for _ in range(2):
        captioner, _ = build_tiny_blip2(tokenizer, seed=0, n_query=N_QUERY, **RECIPES["small"].model)
        pixels = _pixel_values(captioner, tokenizer, train.images)
        before = {k: v.clone() for k, v in captioner.state_dict().items()}
        torch.manual_seed(123)  # the global stream must not matter
        train_answer_stage(captioner, tokenizer, pixels, train, recipe, seed=4)
        after = captioner.state_dict()
        for key, value in before.items():
            if not key.startswith(("language_model.", "language_projection.")):
                assert torch.equal(value, after[key]), key
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("language_model."))
        assert not captioner.training
        results.append(after)
    for key in results[0]:
        assert torch.equal(results[0][key], results[1][key]), key


def test_answer_examples_mix_captions_questions_and_dialogues(scenes):
    import dataclasses

    from training.demo_world.vlm import _answer_examples

    train = scenes[0]
    recipe = dataclasses.replace(RECIPES["small"], qa_caption_share=0.3, qa_dialogue_share=0.5)
    prompts, targets = _answer_examples(train, list(range(64)) * 4, recipe, np.random.default_rng(0))
    captions = [t for p, t in zip(prompts, targets) if not p]
    questions = [p for p in prompts if p]
    assert 0.15 < len(captions) / len(prompts) < 0.45
    assert all(any(t == c for c in train.captions[i % 64]) for i, (p, t) in enumerate(zip(prompts, targets)) if not p)
    assert all(p.startswith("Question: ") and p.endswith(" Answer:") for p in questions)
    assert any(p.count("Question:") > 1 for p in questions) and any(p.count("Question:") == 1 for p in questions)
