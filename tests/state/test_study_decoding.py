"""Decoding across a study's subjects: the same stimulus in every subject, shared language models."""

import shutil

from brainview.analysis.study import load_study
from brainview.state.study import StudyDecoding
from tests.factories import make_distinct


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
    make_distinct(tmp_path / "s2")
    for f in (tmp_path / "s1" / "vlm").rglob("*"):
        if f.is_file():
            twin = tmp_path / "s2" / f.relative_to(tmp_path / "s1")
            twin.unlink()
            os.link(f, twin)
    decoding = StudyDecoding(load_study(tmp_path), device="cpu")
    assert decoding.decoder("s1").adapter is decoding.decoder("s2").adapter
