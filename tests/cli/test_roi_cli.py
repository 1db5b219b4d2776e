"""``brainview roi-images`` and ``brainview roi-table --method … [--evaluate]`` (issue 26): JSON contracts,
ROI files, user errors."""

from __future__ import annotations

import json

import pytest

from brainview.cli import main
from brainview.paths import demo_bundle_path
from tests.factories import make_captioned_bundle


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    return make_captioned_bundle(tmp_path_factory.mktemp("roi_cli"), n_trials=12)


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_roi_images_lists_the_top_trials_with_references_and_the_control(capsys):
    out = run_json(capsys, "roi-images", str(demo_bundle_path()), "floc-words", "--top", "5", "--draws", "50")
    assert out["n_voxels"] == 10 and len(out["trials"]) == 5
    responses = [t["response"] for t in out["trials"]]
    assert responses == sorted(responses, reverse=True)
    assert all(t["references"] and t["fields"]["scene.category"] == "sign" for t in out["trials"])
    category = next(c for c in out["consistency"] if c["field"] == "scene.category")
    assert category["value"] == "sign" and category["count"] == 5 and category["draws"] == 50
    assert category["p_value"] < 0.05
    assert out["words"] and {"term", "count"} <= set(out["words"][0])
    assert main(["roi-images", str(demo_bundle_path()), "floc-words,floc-faces", "--draws", "5"]) == 0
    text = capsys.readouterr().out
    assert "58 voxels" in text and "random sets of 58 voxels" in text


def test_roi_images_reads_a_saved_roi_file(tmp_path, capsys):
    from brainview.bundle import open_bundle
    from brainview.cortex import roi_io
    from brainview.cortex.selection import RoiSelection
    from brainview.cortex.surface import Cortex

    bundle = open_bundle(demo_bundle_path())
    selection = RoiSelection(Cortex.from_bundle(bundle))
    selection.set_atlas_rois(["floc-faces"])
    path = roi_io.save_roi(tmp_path / "faces.json", selection, bundle.name)
    out = run_json(capsys, "roi-images", str(demo_bundle_path()), str(path), "--draws", "5")
    assert out["n_voxels"] == 48
    assert [t["fields"]["scene.category"] for t in out["trials"]].count("face") >= 7


@pytest.mark.parametrize("argv,fragment", [
    (["roi-images", "{demo}", "nowhere"], "no ROI 'nowhere'"),
    (["roi-images", "{demo}", "V1", "--top", "0"], "--top must lie in 1..300"),
    (["roi-images", "{demo}", "V1", "--draws", "0"], "--draws"),
    (["roi-table", "{demo}", "--method", "manifold", "--temperature", "0"], "--temperature must be positive"),
    (["roi-table", "{demo}", "--method", "data", "--top", "301"], "--top must lie in 1..300"),
    (["roi-table", "{demo}", "--evaluate", "--truth", "/no/truth.json"], "does not exist"),
])
def test_user_errors_exit_2_with_one_line(capsys, argv, fragment):
    assert main([a.format(demo=demo_bundle_path()) for a in argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("method", ["manifold", "data"])
def test_roi_table_by_method(capsys, captioned, method):
    out = run_json(capsys, "roi-table", str(captioned.path), "--method", method, "--top", "3", "--device", "cpu")
    assert out["method"] == method and list(out["rois"]) == ["V1", "V2", "FFA-1"]
    for row in out["rois"].values():
        assert isinstance(row["caption"], str) and len(row["images"]) == 3
    if method == "manifold":
        assert all(row["temperature"] == 0.02 and 1 <= row["effective_images"] <= 12 for row in out["rois"].values())


def test_roi_table_evaluate_scores_every_method_against_random_captions(capsys, captioned, tmp_path):
    (tmp_path / "truth.json").write_text(json.dumps({"V1": "caption 3 of trial 3"}))
    out = run_json(capsys, "roi-table", str(captioned.path), "--evaluate", "--device", "cpu",
                   "--truth", str(tmp_path / "truth.json"))
    evaluation = out["evaluation"]
    assert evaluation["halves"] == [6, 6] and len(evaluation["random_captions"]) == 20
    assert set(evaluation["summary"]) == {"paper", "manifold", "data", "truth", "random"}
    assert evaluation["summary"]["truth"]["n_regions"] == 1
    for row in evaluation["regions"].values():
        for method in ("paper", "manifold", "data"):
            low, high = row[method]["ci95"]
            assert -1 <= low <= high <= 1 and 0 <= row[method]["beats_random"] <= 1


def test_roi_table_by_method_for_a_study(study_file, capsys):
    out = run_json(capsys, "roi-table", str(study_file), "--method", "data", "--top", "2", "--device", "cpu")
    assert out["method"] == "data" and set(out["subjects"]) == {"subj01", "subj02", "subj05"}
    assert out["subjects"]["subj01"] == out["subjects"]["subj02"]  # identical bundles, identical answers
    assert all(len(row["images"]) == 2 for row in out["subjects"]["subj01"].values())
