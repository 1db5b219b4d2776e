"""brainview eval|roi-table on a study: JSON contracts and broken studies."""

import json

import numpy as np
import pytest

from brainview.cli import main


def test_cli_reports_a_broken_study_with_status_2(tmp_path, capsys):
    file = tmp_path / "study.json"
    file.write_text('{"format": "brainview-study", "version": 1, "subjects": [{"id": "s", "bundle": "gone"}]}')
    assert main(["roi-table", str(file), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_roi_table_json_contract_for_a_study(study_file, app_bundle, capsys):
    assert main(["roi-table", str(study_file), "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["subjects"]) == {"subj01", "subj02", "subj05"}
    for rois in out["subjects"].values():
        assert set(rois) == set(app_bundle.rois)
        for name, row in rois.items():
            assert isinstance(row["caption"], str) and row["caption"]
            assert row["n_voxels"] == len(app_bundle.rois[name]["voxels"])
    # the same weights (subj02 differs only in its fMRI) give the same ROI captions; one bundle keeps today's output
    assert out["subjects"]["subj01"] == out["subjects"]["subj02"]
    assert main(["roi-table", str(study_file.parent / "subj01"), "--device", "cpu", "--json"]) == 0
    single = json.loads(capsys.readouterr().out)
    assert "rois" in single and {k: v["caption"] for k, v in single["rois"].items()} == {
        k: v["caption"] for k, v in out["subjects"]["subj01"].items()}


def test_eval_json_gives_each_subject_and_the_mean_with_its_spread(study_file, capsys):
    assert main(["eval", str(study_file), "--device", "cpu", "--repeats", "3", "--no-captions", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["subjects"]) == {"subj01", "subj02", "subj05"}
    top1 = [out["subjects"][s]["retrieval"]["image_given_brain"]["top1"] for s in ("subj01", "subj02", "subj05")]
    spread = out["mean"]["retrieval"]["image_given_brain"]
    assert spread["mean"] == pytest.approx(np.mean(top1)) and spread["sd"] == pytest.approx(np.std(top1, ddof=1))
    assert spread["min"] == min(top1) and spread["n"] == 3
    assert out["subjects"]["subj05"]["retrieval"]["image_given_brain"]["pool"] == 11  # it saw one image fewer
    assert out["mean"]["captioning"]["meteor"]["mean"] is None  # captions were not asked for: no invented 0


def test_table_of_a_study_is_its_subjects_side_by_side(study_file, tmp_path, capsys):
    """``brainview table STUDY``: Table 3 across subjects (the Subjects panel's summary), with each pool's chance
    level and the mean, sd, min and max across subjects; pandas reads the figures as floats."""
    import pandas as pd

    out = tmp_path / "subjects.csv"
    assert main(["table", str(study_file), "--out", str(out), "--device", "cpu"]) == 0
    frame = pd.read_csv(out)
    assert frame["subject"].tolist() == ["subj01", "subj02", "subj05", "mean", "sd", "min", "max"]
    assert frame["pool"].iloc[:3].tolist() == [12, 12, 11] and np.isnan(frame["pool"].iloc[3])  # pools differ
    assert frame["chance"].iloc[:3].tolist() == pytest.approx([1 / 12, 1 / 12, 1 / 11])
    top1 = frame["image_given_brain"].iloc[:3]
    assert frame["image_given_brain"].iloc[3] == pytest.approx(top1.mean())
    assert frame["image_given_brain"].iloc[4] == pytest.approx(top1.std(ddof=1))
    assert frame["meteor"].isna().all()  # not recorded in these bundles: empty, never an invented 0
    assert (frame["stage"].iloc[:3] == "stage2").all()
    assert main(["table", str(study_file), "--what", "trials", "--out", str(out)]) == 2
    assert "--what subjects" in capsys.readouterr().err
    assert main(["table", str(study_file.parent / "subj01"), "--what", "subjects", "--out", str(out)]) == 2
    assert "needs a study" in capsys.readouterr().err
