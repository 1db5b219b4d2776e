"""The captioner on a CPU in int8, float16 or float32: the same captions within the quality guard, weights
read from sharded hub-layout checkpoints without a float32 copy, a tied output layer never read twice."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from brainview.decoding.blip2 import Blip2Adapter
from brainview.errors import UserError


@pytest.fixture
def query_tokens(tiny_vlm_config):
    shape = (3, tiny_vlm_config["n_query"], tiny_vlm_config["query_dim"])
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _hub_layout(source, out, n_shards: int = 3):
    """``source``'s checkpoint re-saved as the hub ships blip2-opt-2.7b: shards with an index, and the
    tied ``lm_head`` stored as its own tensor."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, out)
    config = json.loads((out / "config.json").read_text())
    config["text_config"]["tie_word_embeddings"] = True  # as OPT-2.7B (the tiny models are untied)
    (out / "config.json").write_text(json.dumps(config))
    state = load_file(str(out / "model.safetensors"))
    (out / "model.safetensors").unlink()
    state["language_model.lm_head.weight"] = state["language_model.model.decoder.embed_tokens.weight"].clone()
    keys = sorted(state)
    weight_map = {}
    for i, part in enumerate(np.array_split(np.array(keys), n_shards)):
        name = f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors"
        save_file({k: state[k].half().contiguous() for k in part}, str(out / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in part})
    (out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return out


def test_a_sharded_hub_checkpoint_loads_shard_by_shard_with_its_lm_head_tied(tiny_vlm_dir, tmp_path, query_tokens):
    folder = _hub_layout(tiny_vlm_dir / "captioner", tmp_path / "hub-layout")
    steps = []
    adapter = Blip2Adapter.load(folder, None, device="cpu", parts="caption", cpu_precision="float16",
                                progress=lambda *step: steps.append(step))
    assert [s[:2] for s in steps] == [(1, 3), (2, 3), (3, 3)]
    lm = adapter.captioner.language_model
    assert adapter.captioner_parts == "caption" and adapter.precision == "float16"
    int8 = Blip2Adapter.load(folder, None, device="cpu", parts="caption", cpu_precision="int8")  # shard by shard
    assert int8.precision == "int8" and len(int8.caption(query_tokens, max_new_tokens=5)) == len(query_tokens)
    assert lm.get_output_embeddings().weight is lm.get_input_embeddings().weight  # no second 0.5 GB copy
    assert {p.dtype for p in adapter.captioner.parameters()} == {torch.float16}  # never upcast to float32
    float32 = Blip2Adapter.load(folder, None, device="cpu", parts="caption", cpu_precision="float32")
    assert {p.dtype for p in float32.captioner.parameters()} == {torch.float32}
    whole = Blip2Adapter.load(folder, None, device="cpu")  # transformers' own loading and tying
    expected = whole.caption(query_tokens, max_new_tokens=5)
    assert float32.caption(query_tokens, max_new_tokens=5) == expected
    assert adapter.caption(query_tokens, max_new_tokens=5) == expected


def test_int8_turns_every_linear_layer_of_the_language_model_to_int8(tiny_vlm_dir, query_tokens):
    from torch import nn

    adapter = Blip2Adapter.load(tiny_vlm_dir / "captioner", None, device="cpu", parts="caption", cpu_precision="int8")
    lm = adapter.captioner.language_model
    assert adapter.precision == "int8"
    assert not [m for m in lm.modules() if type(m) is nn.Linear]
    assert all(p.dtype == torch.float32 for p in lm.parameters())  # embeddings and norms in float32
    captions = adapter.caption(query_tokens, max_new_tokens=5)
    assert len(captions) == len(query_tokens) and all(isinstance(c, str) for c in captions)


def test_an_unknown_precision_is_a_user_error(tiny_vlm_dir):
    with pytest.raises(UserError, match="int8, float16, float32"):
        Blip2Adapter.load(tiny_vlm_dir / "captioner", None, device="cpu", parts="caption", cpu_precision="int4")


def test_int8_captions_of_the_demo_keep_meteor_within_0_01_of_float32():
    """The quality guard on the demo's trained captioner (random weights' greedy tokens are near ties)."""
    from brainview.bundle import open_bundle
    from brainview.decoding.decoder import Decoder
    from brainview.decoding.metrics import caption_metrics
    from brainview.paths import demo_bundle_path

    bundle = open_bundle(demo_bundle_path())
    captions = {}
    for precision in ("float32", "int8"):
        decoder = Decoder.load(bundle, "cpu", cpu_precision=precision)
        assert decoder.adapter.precision == precision
        captions[precision] = decoder.captions(decoder.tokens_for_trials(np.arange(bundle.n_trials), "stage2"))
    meteor = {p: caption_metrics(c, bundle.captions, metrics=["meteor"]).means["meteor"] for p, c in captions.items()}
    identical = np.mean([a == b for a, b in zip(captions["int8"], captions["float32"])])
    print(f"METEOR float32 {meteor['float32']:.4f} int8 {meteor['int8']:.4f}; identical captions {identical:.1%}")
    assert abs(meteor["int8"] - meteor["float32"]) <= 0.01
    assert identical >= 0.85  # measured 91.7% (stage 2, 300 trials); most differences are a word or two


def test_on_a_cpu_captions_are_greedy_unless_beams_are_asked_for(app_bundle, tmp_path, monkeypatch):
    from brainview.bundle import open_bundle
    from brainview.decoding.decoder import Decoder
    from tests.factories import copy_with_manifest

    beams = copy_with_manifest(app_bundle.path, tmp_path / "beams", lambda m: m["vlm"].update(num_beams=3))
    decoder = Decoder.load(open_bundle(beams), "cpu")
    asked = []
    real = decoder.adapter.caption
    monkeypatch.setattr(decoder.adapter, "caption", lambda *a, **k: asked.append(k["num_beams"]) or real(*a, **k))
    tokens = decoder.tokens_for_trials([0], "stage2")
    decoder.captions(tokens)
    decoder.generate(tokens, "", num_beams=3)
    assert asked == [1, 3]  # the bundle's 3 beams on a GPU; greedy on the CPU unless asked
