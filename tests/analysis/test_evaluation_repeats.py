"""Single trials on the demo (``evaluate_bundle(..., fmri_repeats="1")``, what ``brainview eval --fmri-repeats 1``
prints): decoding from one repeat is far above chance and below decoding from the mean of all repeats, with
intervals that say so (paired over trials, as the pooled retrieval draws cover every demo trial each time)."""

from __future__ import annotations

import dataclasses

import pytest

from brainview.analysis.evaluation import evaluate_bundle
from brainview.bundle import open_bundle
from brainview.paths import demo_bundle_path


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    from brainview.decoding.decoder import Decoder

    bundle = dataclasses.replace(open_bundle(demo_bundle_path()), questions=None)  # QA is not what this measures
    decoder = Decoder.load(bundle, device="cpu")
    return evaluate_bundle(bundle, decoder, "stage2", 5, 42, fmri_repeats="1", metrics=("meteor",))


def test_single_repeats_decode_far_above_chance(single):
    for figures in (single, single["each_window"]):
        for direction, r in figures["retrieval"].items():
            assert r["ci95"][0] > 20 / r["pool"], direction  # 300-way: chance is 1/300
        meteor = figures["caption_intervals"]["meteor"]
        assert figures["captioning"]["meteor"] >= meteor["ci95"][0] > meteor["chance"] + 0.1
    chance = single["caption_intervals"]["meteor"]["chance_ci95"]
    assert single["caption_intervals"]["meteor"]["ci95"][0] > chance[1]


def test_single_repeats_decode_worse_than_the_mean_of_all(single):
    each = single["each_window"]["versus_all"]
    for name in ("image_given_brain", "text_given_brain", "brain_given_text", "meteor"):
        assert each[name]["ci95"][1] < 0, (name, each[name])
    # ranking brain patterns for an image: a smaller loss on the demo, not resolved by 300 trials
    assert each["brain_given_image"]["difference"] < 0
    assert single["versus_all"]["meteor"]["difference"] < 0
