"""``brainview eval --fmri-repeats``: single trials from the command line, recorded in the JSON, and one
clear message for a bundle that holds only each image's mean."""

from __future__ import annotations

import json

import pytest

from brainview.cli import main
from tests.factories import make_bundle, make_captioned_bundle


@pytest.fixture(scope="module")
def captioned_with_repeats(tmp_path_factory):
    return make_captioned_bundle(tmp_path_factory.mktemp("eval_repeats"), n_trials=12, repeats=3)


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_default_is_the_mean_of_all_repeats_and_says_so(capsys, captioned_with_repeats):
    path = str(captioned_with_repeats.path)
    default = run_json(capsys, "eval", path, "--no-captions")
    assert default["fmri_repeats"] == "all" and "each_window" not in default
    info = run_json(capsys, "info", path)
    assert info["single_trials"] == {"max_repeats": 3, "trials_by_repeats": {"2": 4, "3": 8}}


def test_single_trials_give_figures_windows_and_a_paired_comparison(capsys, captioned_with_repeats):
    path = str(captioned_with_repeats.path)
    one = run_json(capsys, "eval", path, "--fmri-repeats", "1", "--repeats", "3")
    assert one["fmri_repeats"] == "1" and one["trials_with_fewer_repeats"] == 0
    assert one["each_window"]["windows"] == 3
    assert set(one["retrieval"]) == set(one["each_window"]["retrieval"]) == set(one["versus_all"]) - set(
        one["caption_intervals"])
    meteor = one["caption_intervals"]["meteor"]
    assert meteor["ci95"][0] <= one["captioning"]["meteor"] <= meteor["ci95"][1] and meteor["chance"] is not None
    for d in one["versus_all"].values():
        assert d["ci95"][0] <= d["difference"] <= d["ci95"][1] and d["n"] == 12
    two = run_json(capsys, "eval", path, "--fmri-repeats", "2", "--no-captions", "--repeats", "3")
    assert two["fmri_repeats"] == "2" and two["trials_with_fewer_repeats"] == 0
    capsys.readouterr()
    assert main(["eval", path, "--fmri-repeats", "1", "--no-captions", "--repeats", "3"]) == 0
    text = capsys.readouterr().out
    assert "first repeat alone" in text and "less the mean of all repeats" in text


def test_a_bundle_with_only_the_mean_refuses_single_trials_in_one_line(capsys, tmp_path):
    bundle = make_bundle(tmp_path / "plain", n_trials=8, n_voxels=20, subdivisions=1)
    assert main(["eval", str(bundle.path), "--fmri-repeats", "1", "--no-captions"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "test/fmri_repeats.npy" in err
    with pytest.raises(SystemExit) as exit_:
        main(["eval", str(bundle.path), "--fmri-repeats", "3"])
    assert exit_.value.code == 2
