"""The BLIP-2 adapter on tiny models of the real transformers classes, loaded from disk like real weights."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from brainview.decoding.blip2 import Blip2Adapter, DeviceOutOfMemory
from brainview.decoding.device import oom_guard
from brainview.errors import UserError

# the sizes of tests/decoding/conftest.py's TINY_CONFIG
N_QUERY, QUERY_DIM, LM_HIDDEN, TEXT_DIM = 8, 32, 48, 16


def test_fixture_sizes(tiny_vlm_config):
    assert (tiny_vlm_config["n_query"], tiny_vlm_config["query_dim"]) == (N_QUERY, QUERY_DIM)
    assert (tiny_vlm_config["lm_hidden"], tiny_vlm_config["text_dim"]) == (LM_HIDDEN, TEXT_DIM)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    imgs = rng.integers(0, 256, size=(5, 40, 48, 3), dtype=np.uint8)
    imgs[1] = 255 - imgs[0]  # clearly different content
    return imgs


@pytest.fixture(scope="module")
def adapter(tiny_blip2_adapter):
    return tiny_blip2_adapter


@pytest.fixture(scope="module")
def query_tokens(adapter, images):
    return adapter.image_query_tokens(images)


def _library_generate(adapter, images, prompt, **kwargs):
    """What transformers' own Blip2ForConditionalGeneration.generate captions from the images."""
    model = adapter.captioner
    tok = adapter.captioner_tokenizer
    pv = adapter.captioner_image_processor(list(images), return_tensors="pt")["pixel_values"]
    text = tok([prompt] * len(images), return_tensors="pt")
    n = model.config.num_query_tokens
    image_ids = torch.full((len(images), n), model.config.image_token_index, dtype=torch.long)
    input_ids = torch.cat([image_ids, text.input_ids], dim=1)
    with torch.inference_mode():
        out = model.generate(
            pixel_values=pv,
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            do_sample=False,
            pad_token_id=tok.pad_token_id,
            **kwargs,
        )
    return [t.strip() for t in tok.batch_decode(out[:, input_ids.shape[1] :], skip_special_tokens=True)]


# --------------------------------------------------------------------------- loading


def test_load_properties(adapter):
    assert adapter.has_captioner and adapter.has_retrieval
    assert adapter.n_query == N_QUERY
    assert adapter.query_dim == QUERY_DIM
    assert adapter.text_dim == TEXT_DIM
    assert adapter.device == torch.device("cpu")
    assert adapter.captioner.dtype == torch.float32  # full precision on the CPU
    assert not adapter.captioner.training and not adapter.retrieval.training


def test_tokenizer_has_special_tokens(tiny_tokenizer):
    tok = tiny_tokenizer
    for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
        assert getattr(tok, name) is not None, name
    ids = tok("a red ball on the grass").input_ids
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == "a red ball on the grass"
    assert tok.decode(tok("unseen wörds & symbols!").input_ids, skip_special_tokens=True) == "unseen wörds & symbols!"


def test_missing_folder_is_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        Blip2Adapter.load(str(tmp_path / "nope"), None, device="cpu")
    with pytest.raises(UserError, match="retrieval model folder .* does not exist"):
        Blip2Adapter.load(None, "./not/here", device="cpu")


def test_folder_without_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        Blip2Adapter.load(tmp_path / "empty", None, device="cpu")


def test_broken_config_is_user_error(tiny_vlm_dir, tmp_path):
    broken = tmp_path / "captioner"
    shutil.copytree(tiny_vlm_dir / "captioner", broken)
    (broken / "config.json").write_text("{ this is not json", encoding="utf-8")
    with pytest.raises(UserError, match=r"config.json is not valid JSON"):
        Blip2Adapter.load(broken, None, device="cpu")
    (broken / "config.json").write_text(json.dumps({"model_type": "bert"}), encoding="utf-8")
    with pytest.raises(UserError, match="not a BLIP-2 model"):
        Blip2Adapter.load(broken, None, device="cpu")


def test_wrong_model_kind_is_user_error(tiny_vlm_dir):
    with pytest.raises(UserError, match="captioner must be a Blip2ForConditionalGeneration"):
        Blip2Adapter.load(tiny_vlm_dir / "retrieval", None, device="cpu")
    with pytest.raises(UserError, match="retrieval must be a Blip2ForImageTextRetrieval"):
        Blip2Adapter.load(None, tiny_vlm_dir / "captioner", device="cpu")


def test_missing_weights_is_user_error(tiny_vlm_dir, tmp_path):
    folder = tmp_path / "captioner"
    shutil.copytree(tiny_vlm_dir / "captioner", folder)
    for f in folder.glob("*.safetensors"):
        f.unlink()
    with pytest.raises(UserError, match="captioner model .* could not be loaded"):
        Blip2Adapter.load(folder, None, device="cpu")


def test_incomplete_weights_are_user_error(tiny_vlm_dir, tmp_path):
    """A retrieval checkpoint relabelled as a captioner lacks the language model: refused, not random-filled."""
    folder = tmp_path / "relabelled"
    shutil.copytree(tiny_vlm_dir / "retrieval", folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["architectures"] = ["Blip2ForConditionalGeneration"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="not a complete Blip2ForConditionalGeneration"):
        Blip2Adapter.load(folder, None, device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_user_error(tiny_vlm_dir):
    with pytest.raises(UserError, match="no CUDA GPU"):
        Blip2Adapter.load(tiny_vlm_dir / "captioner", None, device="cuda")


def test_unknown_hub_id_is_user_error(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(UserError) as err:
        Blip2Adapter.load("Salesforce/blip2-opt-2.7b", None, device="cpu")
    msg = str(err.value)
    assert "'Salesforce/blip2-opt-2.7b'" in msg
    assert "local Hugging Face cache" in msg and "never downloads" in msg


def test_cached_hub_id_loads(tiny_vlm_dir, tmp_path, monkeypatch):
    """A model id is resolved from the local cache (hub layout), with no network."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    repo = cache / "models--brainview-test--tiny-blip2-captioner"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_vlm_dir / "captioner", repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    a = Blip2Adapter.load("brainview-test/tiny-blip2-captioner", None, device="cpu")
    assert a.has_captioner and not a.has_retrieval
    assert a.n_query == N_QUERY


def test_missing_part_is_user_error(tiny_vlm_dir, query_tokens, images):
    only_cap = Blip2Adapter.load(tiny_vlm_dir / "captioner", None, device="cpu")
    assert only_cap.text_dim is None
    with pytest.raises(UserError, match="no retrieval model"):
        only_cap.text_embeddings(["a dog"])
    with pytest.raises(UserError, match="no retrieval model"):
        only_cap.project_image_tokens(query_tokens)
    with pytest.raises(UserError, match="no retrieval model"):
        only_cap.retrieval_query_tokens(images)
    only_ret = Blip2Adapter.load(None, tiny_vlm_dir / "retrieval", device="cpu")
    with pytest.raises(UserError, match="no captioner model"):
        only_ret.caption(query_tokens)
    with pytest.raises(UserError, match="no captioner model"):
        only_ret.image_query_tokens(images)
    with pytest.raises(UserError, match="no BLIP-2 model"):
        Blip2Adapter.load(None, None)


def test_auto_device_resolves(tiny_vlm_dir):
    a = Blip2Adapter.load(None, tiny_vlm_dir / "retrieval", device="auto")
    assert a.device.type in ("cpu", "cuda", "mps")


# --------------------------------------------------------------------------- images -> query tokens


def test_image_query_tokens_are_qformer_output_before_language_projection(adapter, images, query_tokens):
    assert query_tokens.shape == (len(images), N_QUERY, QUERY_DIM)
    assert query_tokens.dtype == np.float32
    model = adapter.captioner
    pv = adapter.captioner_image_processor(list(images), return_tensors="pt")["pixel_values"]
    assert pv.shape[-2:] == (32, 32)
    with torch.inference_mode():
        # by hand: vision model -> Q-Former over the learned queries
        image_embeds = model.vision_model(pixel_values=pv).last_hidden_state
        by_hand = model.qformer(
            query_embeds=model.query_tokens.expand(len(images), -1, -1),
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=torch.ones(image_embeds.shape[:-1], dtype=torch.long),
        ).last_hidden_state
        # and the library's own path, whose pooler_output is after language_projection
        feats = model.get_image_features(pixel_values=pv)
        projected = model.language_projection(torch.from_numpy(query_tokens))
    np.testing.assert_allclose(query_tokens, by_hand.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(query_tokens, feats.qformer_outputs.last_hidden_state.numpy(), rtol=1e-5, atol=1e-6)
    assert feats.pooler_output.shape[-1] == LM_HIDDEN != QUERY_DIM
    np.testing.assert_allclose(projected.numpy(), feats.pooler_output.numpy(), rtol=1e-4, atol=1e-5)


def test_image_query_tokens_batching_and_content(adapter, images, query_tokens):
    one_by_one = adapter.image_query_tokens(images, batch_size=1)
    np.testing.assert_allclose(one_by_one, query_tokens, rtol=1e-5, atol=1e-6)
    # depends on the image, clearly (not only through rounding)
    across_images = query_tokens.std(axis=0).mean()
    across_queries = query_tokens.std(axis=1).mean()
    assert across_images > 0.1 * across_queries
    assert not np.allclose(query_tokens[0, 0], query_tokens[0, 1])  # distinct learned queries
    assert adapter.image_query_tokens(images[:0]).shape == (0, N_QUERY, QUERY_DIM)


def test_bad_images_are_user_errors(adapter, images):
    with pytest.raises(UserError, match="uint8"):
        adapter.image_query_tokens(images.astype(np.float32))
    with pytest.raises(UserError, match=r"\(n, height, width, 3\)"):
        adapter.image_query_tokens(images[..., :2])


def test_retrieval_query_tokens(adapter, images, query_tokens):
    r = adapter.retrieval_query_tokens(images, batch_size=2)
    assert r.shape == (len(images), N_QUERY, QUERY_DIM) and r.dtype == np.float32
    assert not np.allclose(r, query_tokens)  # its own vision model and Q-Former


# --------------------------------------------------------------------------- captioning


def test_greedy_caption_is_deterministic_and_matches_transformers_generate(adapter, images, query_tokens):
    caps = adapter.caption(query_tokens, max_new_tokens=6)
    assert len(caps) == len(images) and all(isinstance(c, str) for c in caps)
    assert any(caps), "the tiny captioner should produce some text"
    assert caps == [c.strip() for c in caps]
    assert adapter.caption(query_tokens, max_new_tokens=6, batch_size=2) == caps
    assert caps == _library_generate(adapter, images, "", max_new_tokens=6)


def test_beam_search_caption(adapter, images, query_tokens):
    caps = adapter.caption(query_tokens, max_new_tokens=5, num_beams=3)
    assert len(caps) == len(images) and all(isinstance(c, str) for c in caps)
    assert caps == _library_generate(adapter, images, "", max_new_tokens=5, num_beams=3)


def test_prompt_is_used_and_not_returned(adapter, images, query_tokens):
    prompt = "a red ball"
    caps = adapter.caption(query_tokens, prompt=prompt, max_new_tokens=6)
    assert caps == _library_generate(adapter, images, prompt, max_new_tokens=6)
    assert caps != adapter.caption(query_tokens, max_new_tokens=6)
    assert not any(c.startswith(prompt) for c in caps)


def test_caption_accepts_flat_tokens_and_rejects_wrong_shapes(adapter, query_tokens):
    flat = query_tokens[:2].reshape(2, -1)
    assert adapter.caption(flat, max_new_tokens=3) == adapter.caption(query_tokens[:2], max_new_tokens=3)
    with pytest.raises(UserError, match="do not fit the model"):
        adapter.caption(query_tokens[:, :, :-1])
    assert adapter.caption(query_tokens[:0]) == []


# --------------------------------------------------------------------------- text and image-text space


def test_text_embeddings_normalized_and_padding_invariant(adapter):
    texts = ["a dog", "two people walking on a beach near the sea", "", "a red ball on the green grass"]
    emb = adapter.text_embeddings(texts)
    assert emb.shape == (len(texts), TEXT_DIM) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    single = np.concatenate([adapter.text_embeddings([t]) for t in texts])
    np.testing.assert_allclose(emb, single, rtol=1e-4, atol=1e-5)  # padding is masked
    assert not np.allclose(emb[0], emb[1])
    assert adapter.text_embeddings([]).shape == (0, TEXT_DIM)


def test_itc_matches_transformers_retrieval_forward(adapter, images):
    """text_embeddings and project_image_tokens(retrieval_query_tokens) give the model's own ITC score."""
    texts = ["a smiling face behind a window"] * len(images)
    model = adapter.retrieval
    tok = adapter.retrieval_tokenizer
    pv = adapter.retrieval_image_processor(list(images), return_tensors="pt")["pixel_values"]
    enc = tok(texts, return_tensors="pt", padding=True)
    n = model.config.num_query_tokens
    image_ids = torch.full((len(images), n), model.config.image_token_index, dtype=torch.long)
    with torch.inference_mode():
        out = model(
            pixel_values=pv,
            input_ids=torch.cat([image_ids, enc.input_ids], 1),
            attention_mask=torch.cat([torch.ones_like(image_ids), enc.attention_mask], 1),
            use_image_text_matching_head=False,
        )
    text = adapter.text_embeddings(texts)
    img = adapter.project_image_tokens(adapter.retrieval_query_tokens(images))
    np.testing.assert_allclose(text, out.text_embeds.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(img, out.image_embeds.numpy(), rtol=1e-4, atol=1e-5)
    score = np.einsum("nqd,md->nmq", img, text).max(-1)
    np.testing.assert_allclose(score, out.logits_per_image.numpy(), rtol=1e-4, atol=1e-5)


def test_project_image_tokens(adapter, query_tokens):
    p = adapter.project_image_tokens(query_tokens, batch_size=2)
    assert p.shape == (len(query_tokens), N_QUERY, TEXT_DIM) and p.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(p, axis=-1), 1.0, rtol=1e-5)
    with torch.inference_mode():
        ref = torch.nn.functional.normalize(adapter.retrieval.vision_projection(torch.from_numpy(query_tokens)), dim=-1)
    np.testing.assert_allclose(p, ref.numpy(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- out of memory


def test_out_of_memory_becomes_device_out_of_memory():
    assert issubclass(DeviceOutOfMemory, UserError)
    with pytest.raises(DeviceOutOfMemory, match="ran out of memory while captioning") as err:
        with oom_guard(torch.device("mps"), "captioning"):
            raise torch.OutOfMemoryError("MPS backend out of memory")
    assert err.value.device.type == "mps"
    with pytest.raises(RuntimeError, match="something else"):
        with oom_guard(torch.device("mps"), "captioning"):
            raise RuntimeError("something else")


def test_generation_never_runs_past_the_language_models_positions(adapter, query_tokens):
    """A bundle may ask for more new tokens than the model has positions: generation stops at the
    last position instead of failing inside the position embedding."""
    positions = adapter.captioner.language_model.config.max_position_embeddings
    captions = adapter.caption(query_tokens[:2], max_new_tokens=10 * positions)
    assert len(captions) == 2
    assert all(isinstance(c, str) and len(c.split()) <= positions for c in captions)
    with pytest.raises(UserError, match="fill the language model's"):
        adapter.caption(query_tokens[:1], prompt="word " * positions)


def test_the_load_report_is_silent_only_where_the_unexpected_weights_are_left_out_on_purpose(tiny_vlm_dir, caplog,
                                                                                           tmp_path):
    """A text encoder read from a full retrieval checkpoint skips its vision tower on purpose: no report.
    A weight the loaded part should know and does not is reported."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file
    from transformers import Blip2ForImageTextRetrieval, Blip2TextModelWithProjection

    from brainview.decoding.blip2_loading import load_model

    with caplog.at_level("WARNING", logger="transformers.modeling_utils"):
        model = load_model(Blip2TextModelWithProjection, str(tiny_vlm_dir / "retrieval"), "retrieval",
                           torch.device("cpu"), torch.float32)
    assert not hasattr(model, "vision_model")
    assert "LOAD REPORT" not in caplog.text
    # the whole retrieval model from its own checkpoint has nothing unexpected either
    with caplog.at_level("WARNING", logger="transformers.modeling_utils"):
        load_model(Blip2ForImageTextRetrieval, str(tiny_vlm_dir / "retrieval"), "retrieval", torch.device("cpu"),
                   torch.float32)
    assert "LOAD REPORT" not in caplog.text

    odd = tmp_path / "retrieval"
    shutil.copytree(tiny_vlm_dir / "retrieval", odd)
    weights = next(odd.glob("*.safetensors"))
    state = load_file(weights)
    state["qformer.stray_weight"] = torch.zeros(3)  # inside a part the text encoder keeps: a real surprise
    save_file(state, weights, metadata={"format": "pt"})
    caplog.clear()
    with caplog.at_level("WARNING", logger="transformers.modeling_utils"):
        load_model(Blip2TextModelWithProjection, str(odd), "retrieval", torch.device("cpu"), torch.float32)
    assert "LOAD REPORT" in caplog.text and "stray_weight" in caplog.text
