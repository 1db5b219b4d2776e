"""Studies (issue 16): loading, stimulus matching with a subject who missed a stimulus, the study forms
of ``brainview roi-table`` and ``brainview eval`` (JSON contracts)."""

import json
import shutil

import numpy as np
import pytest

from brainview.cli import main
from brainview.study import (StudyError, demo_study_state, is_study, load_study, match_stimuli, mean_and_spread,
                             write_study)
from brainview.study_session import StudyDecoding


def test_study_loads_and_matches_stimuli_with_a_missing_one(study_file, app_bundle):
    study = load_study(study_file)
    assert study.ids == ["subj01", "subj02", "subj05"] and study.match == "nsd_id"
    match = study.stimuli
    n = app_bundle.n_trials
    assert match.keys == [str(i) for i in range(n)]
    last = str(n - 1)
    assert match.trial_of("subj01", last) == n - 1
    assert match.trial_of("subj05", last) is None  # subj05 did not see it
    assert match.seen_by(last) == ["subj01", "subj02"]
    assert len(match.shared()) == n - 1
    assert study.subject_of(study_file.parent / "subj02") == "subj02"
    assert is_study(study_file) and is_study(study_file.parent) and not is_study(study_file.parent / "subj01")


def test_match_orders_the_union_and_marks_absences():
    match = match_stimuli({"a": ["x", "y"], "b": ["z", "x"]})
    assert match.keys == ["x", "y", "z"]
    assert match.trial["a"].tolist() == [0, 1, -1] and match.trial["b"].tolist() == [1, -1, 0]


def test_folder_of_bundles_is_a_study(tmp_path, app_bundle):
    for name in ("b", "a"):
        shutil.copytree(app_bundle.path, tmp_path / name)
    study = load_study(tmp_path)
    assert study.ids == ["a", "b"] and study.match == "nsd_id"  # every trial has an nsd_id


@pytest.mark.parametrize("content, problem", [
    ("[]", "JSON object"),
    ('{"format": "brainview-study", "version": 9, "subjects": []}', "version 9"),
    ('{"format": "brainview-study", "version": 1, "subjects": []}', "subjects"),
    ('{"format": "brainview-study", "version": 1, "subjects": [{"id": "s", "bundle": "nowhere"}]}', "does not exist"),
    ('{"format": "brainview-study", "version": 1, "subjects": [{"id": "s", "bundle": "b"}, {"id": "s", "bundle": "b"}]}',
     "not unique"),
    ("{", "not valid JSON"),
    ('{"format": "brainview-study", "version": 1, "subjects": NaN}', "not valid JSON"),
])
def test_broken_study_files_are_one_clear_error(tmp_path, content, problem, capsys):
    (tmp_path / "b").mkdir()
    file = tmp_path / "study.json"
    file.write_text(content)
    with pytest.raises(StudyError, match=problem):
        load_study(file)


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
    # identical bundles decode identically; one bundle keeps today's output
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


def test_stimulus_across_subjects_and_shared_models(study_file, app_bundle):
    decoding = StudyDecoding(load_study(study_file), device="cpu")
    last = str(app_bundle.n_trials - 1)
    rows = decoding.stimulus(last)
    assert rows["subj05"] is None
    a, b = rows["subj01"], rows["subj02"]
    assert a.image_rank == b.image_rank and a.captions == b.captions and a.captions["stage2"]
    assert a.image_rank["stage1"] == 1  # the factory plants exact stage-1 predictions
    assert 1 <= a.text_rank["stage2"] <= a.n_texts
    # copies are different files: each loads its models; hard links would share one adapter
    assert decoding.decoder("subj01").adapter is not decoding.decoder("subj02").adapter


def test_hard_linked_models_are_loaded_once(tmp_path, app_bundle):
    import os

    for name in ("s1", "s2"):
        shutil.copytree(app_bundle.path, tmp_path / name)
    for f in (tmp_path / "s1" / "vlm").rglob("*"):
        if f.is_file():
            twin = tmp_path / "s2" / f.relative_to(tmp_path / "s1")
            twin.unlink()
            os.link(f, twin)
    decoding = StudyDecoding(load_study(tmp_path), device="cpu")
    assert decoding.decoder("s1").adapter is decoding.decoder("s2").adapter


def test_mean_and_spread_leaves_out_missing_values():
    assert mean_and_spread([0.2, None, 0.4]) == {"mean": pytest.approx(0.3), "sd": pytest.approx(0.1414, abs=1e-4),
                                                 "min": 0.2, "max": 0.4, "n": 2}
    assert mean_and_spread([None])["mean"] is None


def test_demo_study_state_follows_the_demo_bundle(tmp_path, study_file, app_bundle):
    state, _ = demo_study_state(app_bundle.path, tmp_path / "none")
    assert state == "missing"
    from brainview.study import bundle_fingerprint

    folder = tmp_path / "built"
    write_study(folder, {"subj01": app_bundle.path}, name="d", match="id",
                built_from={"fingerprint": bundle_fingerprint(app_bundle.path)})
    assert demo_study_state(app_bundle.path, folder)[0] == "ready"
    write_study(folder, {"subj01": app_bundle.path}, name="d", match="id", built_from={"fingerprint": "old"})
    assert demo_study_state(app_bundle.path, folder)[0] == "stale"
