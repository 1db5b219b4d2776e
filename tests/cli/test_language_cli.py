"""``brainview search | classify | localize`` through the real text encoder (tiny BLIP-2 models saved and reloaded)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from brainview.cli import main
from tests.factories import make_bundle, make_captioned_bundle


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    return make_captioned_bundle(tmp_path_factory.mktemp("lang_cli"), n_trials=12)


@pytest.fixture(scope="module")
def encoder(captioned):
    from brainview.decoding.blip2 import Blip2Adapter

    return Blip2Adapter.load(None, captioned.path / "vlm" / "retrieval", device="cpu")


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def expected_scores(bundle, encoder, texts):
    from brainview.decoding.brain_model import BrainModel
    from brainview.decoding.retrieval import text_scores

    model = BrainModel.from_bundle(bundle)
    embedded = encoder.text_embeddings(texts)
    brain = text_scores(model.project_text(model.predict(bundle.fmri, "stage2")), embedded)
    image = text_scores(model.project_text(bundle.image_embeddings), embedded)
    return brain, image


def test_the_text_encoder_loads_only_the_text_path(captioned, encoder):
    from brainview.decoding.language import load_text_encoder

    text_only = load_text_encoder(captioned, device="cpu")
    assert not hasattr(text_only.retrieval, "vision_model")  # the vision tower is never read
    n_params = lambda adapter: sum(p.numel() for p in adapter.retrieval.parameters())  # noqa: E731
    assert n_params(text_only) < n_params(encoder)
    phrases = ["a red ball", "a dog on the grass"]
    np.testing.assert_allclose(text_only.text_embeddings(phrases), encoder.text_embeddings(phrases), atol=1e-6)


def test_help_lists_the_language_commands():
    out = subprocess.run([sys.executable, "-m", "brainview", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("search", "classify", "localize"):
        assert command in out


def test_search_ranks_by_the_text_given_brain_score(capsys, captioned, encoder):
    result = run_json(capsys, "search", str(captioned.path), "a red ball", "--top", "5")
    assert result["phrase"] == "a red ball" and len(result["trials"]) == 5
    brain, image = expected_scores(captioned, encoder, ["a red ball"])
    best = np.argsort(-brain[:, 0], kind="stable")[:5]
    assert [t["index"] for t in result["trials"]] == best.tolist()
    assert [t["id"] for t in result["trials"]] == [captioned.trials[i]["id"] for i in best]
    for row in result["trials"]:
        assert row["score"] == pytest.approx(float(brain[row["index"], 0]), abs=1e-5)
        assert row["image_score"] == pytest.approx(float(image[row["index"], 0]), abs=1e-5)
    assert -1 <= result["agreement"]["spearman"] <= 1


def test_classify_with_prompt_ensembles_truth_and_csv(capsys, tmp_path, captioned, encoder):
    labels = tmp_path / "labels.txt"
    labels.write_text("0=a photo of zero;the number zero\n1\n2\n\n")
    out_csv = tmp_path / "confusion.csv"
    result = run_json(capsys, "classify", str(captioned.path), "--labels", f"@{labels}", "--truth", "nsd_id",
                      "--top", "2", "--csv", str(out_csv))
    assert result["labels"] == ["0", "1", "2"]
    assert len(result["predictions"]) == 12 and all(len(p["top"]) == 2 for p in result["predictions"])
    acc = result["accuracy"]
    assert acc["n"] == 3 and acc["chance"] == pytest.approx(1 / 3) and acc["top5"] == 1.0
    assert set(acc) >= {"top1", "top5", "ci95", "chance", "n"} and result["image_accuracy"]["n"] == 3
    assert np.asarray(result["confusion"]).sum() == 3 and np.asarray(result["confusion"]).shape == (3, 3)
    # the label embedding of "0" is its two prompts averaged and renormalized
    from brainview.decoding.vectors import unit_norm

    prompts = encoder.text_embeddings(["a photo of zero", "the number zero", "a photo of a 1", "a photo of a 2"])
    from brainview.decoding.brain_model import BrainModel
    from brainview.decoding.retrieval import text_scores

    model = BrainModel.from_bundle(captioned)
    label_embeddings = np.stack([unit_norm(prompts[:2].mean(0)), prompts[2], prompts[3]])
    scores = text_scores(model.project_text(model.predict(captioned.fmri, "stage2")), label_embeddings)
    assert result["predictions"][5]["top"][0] == result["labels"][int(np.argmax(scores[5]))]
    rows = list(csv.reader(out_csv.open()))
    assert rows[0][1:] == ["0", "1", "2"] and [[int(v) for v in r[1:]] for r in rows[1:]] == result["confusion"]


def test_classify_without_truth_has_no_accuracy(capsys, captioned):
    result = run_json(capsys, "classify", str(captioned.path), "--labels", "ball,face,sign")
    assert result["accuracy"] is None and result["image_accuracy"] is None and result["confusion"] is None
    assert result["predictions"][0]["top"] and len(result["predictions"][0]["top"]) == 3


def test_localize_writes_the_map_and_checks_the_lesion(capsys, tmp_path, captioned):
    import nibabel as nib

    result = run_json(capsys, "localize", str(captioned.path), "a dog running", "--out", str(tmp_path / "map.npy"),
                      "--lesion", "10")
    assert result["trial"] is None and result["map"] == "covariance"
    means = list(result["rois"].values())
    assert set(result["rois"]) == {"V1", "V2", "FFA-1"} and means == sorted(means, reverse=True)
    lesion = result["lesion"]
    assert lesion["top_fraction"] == pytest.approx(0.1) and lesion["n_voxels"] == 6  # 10% of 60
    assert isinstance(lesion["caption_before"], str) and isinstance(lesion["caption_after"], str)
    for key in ("score_drop", "random_score_drop"):
        assert isinstance(lesion[key], float)
    values = np.load(tmp_path / "map.npy")
    assert values.shape == (captioned.n_voxels,)
    means_v1 = values[captioned.roi_voxels("V1")].mean()
    assert result["rois"]["V1"] == pytest.approx(float(means_v1), abs=1e-5)

    trial_id = captioned.trials[3]["id"]
    result = run_json(capsys, "localize", str(captioned.path), "a dog running", "--trial", trial_id,
                      "--out", str(tmp_path / "map.func.gii"), "--no-captions")
    assert result["trial"] == trial_id and result["map"] == "gradient×input"
    assert result["lesion"]["caption_before"] is None and result["lesion"]["n_trials"] == 1
    lh = nib.load(tmp_path / "map.lh.func.gii").darrays[0].data
    rh = nib.load(tmp_path / "map.rh.func.gii").darrays[0].data
    assert lh.shape == (captioned.n_vertices["lh"],) and rh.shape == (captioned.n_vertices["rh"],)
    assert np.abs(np.concatenate([lh, rh])).max() > 0


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    root = tmp_path_factory.mktemp("lang_plain")
    return {"novlm": make_bundle(root / "novlm", n_trials=10).path,
            "stage1": make_bundle(root / "stage1", n_trials=10, stages=("stage1",)).path}


@pytest.mark.parametrize("argv,fragment", [
    (["search", "{novlm}", "a dog"], "names none"),
    (["search", "{stage1}", "a dog"], "stage 2"),
    (["search", "{captioned}", "a dog", "--stage", "1"], "stage 2"),
    (["search", "{captioned}", "   "], "empty"),
    (["classify", "{captioned}", "--labels", "a"], "at least two"),
    (["classify", "{captioned}", "--labels", "@/no/labels.txt"], "does not exist"),
    (["classify", "{captioned}", "--labels", "a,b", "--truth", "scene.kind"], "no trial has a field"),
    (["classify", "{captioned}", "--labels", "a,b", "--csv", "x.csv"], "needs a truth"),
    (["localize", "{captioned}", "a dog", "--lesion", "0"], "--lesion"),
    (["localize", "{captioned}", "a dog", "--out", "map.png"], ".func.gii"),
    (["localize", "{captioned}", "a dog", "--trial", "nope"], "no test trial"),
])
def test_user_errors_exit_2_with_one_line(capsys, captioned, plain, argv, fragment):
    argv = [a.format(captioned=captioned.path, **plain) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["localize", "{captioned}", "a dog", "--out", "{tmp}/missing/map.npy"],
    ["localize", "{captioned}", "a dog", "--out", "/proc/self/map.npy"],
    ["classify", "{captioned}", "--labels", "a,b", "--truth", "scene.kind", "--csv", "{tmp}"],
])
def test_outputs_are_checked_before_the_model_work(capsys, captioned, tmp_path, monkeypatch, argv):
    from brainview.decoding.language import probe

    monkeypatch.setattr(probe.LanguageProbe, "load", lambda *a, **k: pytest.fail("the model loaded first"))
    assert main([a.format(captioned=captioned.path, tmp=tmp_path) for a in argv]) == 2
    assert capsys.readouterr().err.count("\n") == 1
