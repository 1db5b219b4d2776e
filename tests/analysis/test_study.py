"""Studies (issue 16): loading, stimulus matching with a subject who missed a stimulus, the spread
across subjects, the demo study's state. The command forms are in tests/cli/test_study_cli.py, the
decoding across subjects in tests/state/test_study_decoding.py."""

import shutil

import pytest

from brainview.analysis.demo_study import bundle_fingerprint, demo_study_state
from brainview.analysis.study import (StudyError, is_study, load_study, match_stimuli,
                                      mean_and_spread, write_study)
from tests.factories import make_distinct


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
    make_distinct(tmp_path / "b")
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
    ('{"format": "brainview-study", "version": 1, "subjects": NaN}', '"subjects" must be a list'),
])
def test_broken_study_files_are_one_clear_error(tmp_path, content, problem, capsys):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "manifest.json").write_text("{}")
    file = tmp_path / "study.json"
    file.write_text(content)
    with pytest.raises(StudyError, match=problem):
        load_study(file)


def test_mean_and_spread_leaves_out_missing_values():
    assert mean_and_spread([0.2, None, 0.4]) == {"mean": pytest.approx(0.3), "sd": pytest.approx(0.1414, abs=1e-4),
                                                 "min": 0.2, "max": 0.4, "n": 2}
    assert mean_and_spread([None])["mean"] is None


def test_demo_study_state_follows_the_demo_bundle(tmp_path, study_file, app_bundle):
    state, _ = demo_study_state(app_bundle.path, tmp_path / "none")
    assert state == "missing"

    folder = tmp_path / "built"
    write_study(folder, {"subj01": app_bundle.path}, name="d", match="id",
                built_from={"fingerprint": bundle_fingerprint(app_bundle.path)})
    assert demo_study_state(app_bundle.path, folder)[0] == "ready"
    write_study(folder, {"subj01": app_bundle.path}, name="d", match="id", built_from={"fingerprint": "old"})
    assert demo_study_state(app_bundle.path, folder)[0] == "stale"


def test_a_demo_that_gained_single_trials_makes_its_study_stale(tmp_path, app_bundle):
    """A study built before the demo carried ``test/fmri_repeats.npy`` has subjects without repeats:
    ``eval --fmri-repeats`` would refuse them, so the study must be rebuilt."""
    import numpy as np

    from brainview.bundle import open_bundle
    from tests.factories import noisy_repeats

    demo = tmp_path / "demo"
    shutil.copytree(app_bundle.path, demo)
    folder = tmp_path / "built"
    write_study(folder, {"subj01": demo}, name="d", match="id",
                built_from={"fingerprint": bundle_fingerprint(demo)})
    assert demo_study_state(demo, folder)[0] == "ready"
    fmri = np.asarray(open_bundle(demo).fmri, dtype=np.float32)
    parts = noisy_repeats(fmri, 3)
    np.save(demo / "test" / "fmri_repeats.npy", parts["fmri_repeats"].astype(np.float16))
    np.save(demo / "test" / "fmri_repeat_counts.npy", parts["repeat_counts"].astype(np.uint8))
    assert open_bundle(demo).max_repeats == 3  # a valid bundle with single trials
    assert demo_study_state(demo, folder)[0] == "stale"
