"""The "Load on the CPU?" question's figures come from a measurement: this machine's memory bandwidth
before the first load, the captioner's own time per token (and load time) after it; for a model
named by folder or by Hugging Face id alike."""

from __future__ import annotations

import json
import shutil

import pytest

from brainview.bundle import open_bundle
from brainview.decoding import cpu_precision
from brainview.state import caption_speed
from brainview.state.loading import load_decoder, plan_language_models


@pytest.fixture
def fresh_bundle(app_bundle, tmp_path, monkeypatch):
    """A copy of the captioned bundle (a model no other test holds loaded), with no speed measured yet."""
    monkeypatch.setenv("BRAINVIEW_SPEED_FILE", str(tmp_path / "speed.json"))
    shutil.copytree(app_bundle.path, tmp_path / "copy")
    return open_bundle(tmp_path / "copy")


def test_before_any_load_the_estimate_comes_from_the_measured_bandwidth(fresh_bundle, monkeypatch):
    monkeypatch.setattr(cpu_precision, "measure_read_bandwidth", lambda: 1e9)
    plan = plan_language_models(fresh_bundle, "cpu", "float16")
    assert plan.precision == "float16" and plan.memory_bytes == 2 * plan.parameters
    assert plan.speed.token_seconds == pytest.approx(plan.parameters * 2 / 1e9 * cpu_precision.READ_OVERHEAD)
    assert plan.speed.load_seconds is None and "memory bandwidth (1 GB/s)" in plan.text()
    monkeypatch.setattr(cpu_precision, "measure_read_bandwidth", lambda: 2e9)  # a faster machine: half the time
    assert plan_language_models(fresh_bundle, "cpu", "float16").speed.token_seconds == pytest.approx(
        plan.speed.token_seconds / 2)


def test_after_a_load_the_question_says_what_was_measured(fresh_bundle):
    decoder, _ = load_decoder(fresh_bundle, "cpu", cpu_precision="int8")
    measured = decoder.adapter.token_seconds
    assert measured > 0
    stored = json.loads(caption_speed.speed_file().read_text())
    assert len(stored) == 1 and next(iter(stored.values()))["token_seconds"] == measured
    plan = plan_language_models(fresh_bundle, "cpu", "int8")
    assert plan.speed.token_seconds == measured and plan.speed.load_seconds > 0
    assert "measured when it was last loaded here" in plan.text() and f"{measured:.2f} s per token" in plan.text()
    # another precision was not measured: estimated again
    assert "bandwidth" in plan_language_models(fresh_bundle, "cpu", "float32").speed.source


def test_a_bundle_naming_its_captioner_by_hub_id_is_planned_from_the_cache(app_bundle, tmp_path, monkeypatch):
    """Sizes come from the local Hugging Face cache's checkpoint, so the app asks before a big load."""
    from huggingface_hub import constants

    from tests.factories import copy_with_manifest

    cache = tmp_path / "hub"
    repo = cache / "models--brainview-test--tiny-captioner"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(app_bundle.path / "vlm" / "captioner", repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    by_id = open_bundle(copy_with_manifest(app_bundle.path, tmp_path / "by-id",
                                           lambda m: m["vlm"].update(captioner="brainview-test/tiny-captioner")))
    plan = plan_language_models(by_id, "cpu")
    assert plan is not None and plan.parameters == plan_language_models(app_bundle, "cpu").parameters
    monkeypatch.setattr("brainview.state.loading.CPU_ASK_PARAMETERS", plan.parameters - 1)
    assert plan.ask_first
