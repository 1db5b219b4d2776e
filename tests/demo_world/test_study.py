"""The demo study at reduced size (issue 16): the small demo bundle as subj01 and three virtual subjects
derived from it; and the subjects' traits."""

import json
import os

import numpy as np
import pytest

from brainview.analysis.study import load_study
from brainview.bundle import open_bundle
from training.demo_world.__main__ import main
from training.demo_world.study import SHARED_FILES, subject_seed
from training.demo_world.subject import ROI_NAMES, SubjectTraits


@pytest.fixture(scope="module")
def small_study(small_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    assert main(["study", "--demo", str(small_bundle.path), "--out", str(out), "--subjects", "4", "--no-eval"]) == 0
    return load_study(out / "study.json")


def test_four_subjects_see_the_same_scenes_on_the_same_cortex(small_study, small_bundle):
    study = small_study
    assert study.ids == ["subj01", "subj02", "subj03", "subj04"]
    assert study.subject("subj01").path == small_bundle.path  # the demo bundle itself
    assert study.match == "id" and len(study.stimuli.shared()) == small_bundle.n_trials
    for s in study.ids[1:]:
        bundle = open_bundle(study.subject(s).path)  # each a complete bundle on its own
        assert [t["id"] for t in bundle.trials] == [t["id"] for t in small_bundle.trials]
        assert np.array_equal(bundle.stimuli, small_bundle.stimuli)
        assert np.array_equal(bundle.image_embeddings, small_bundle.image_embeddings)
        assert bundle.mesh["lh"]["pial"].shape == small_bundle.mesh["lh"]["pial"].shape
        assert set(bundle.rois) == set(ROI_NAMES)
        assert bundle.manifest["subject"] == s and bundle.stages == ["stage1", "stage2"]


def test_subjects_differ_as_real_ones_do(small_study, small_bundle):
    bundles = [open_bundle(small_study.subject(s).path) for s in small_study.ids]
    assert len({b.n_voxels for b in bundles}) > 1 or len({len(b.rois["floc-faces"]["voxels"]) for b in bundles}) > 1
    sizes = np.array([[len(b.rois[r]["voxels"]) for r in ROI_NAMES] for b in bundles])
    assert (sizes.std(0) > 0).sum() >= 5  # most ROIs differ in size between subjects
    weights = [np.asarray(b.weights["stage2.weight"], dtype=np.float32) for b in bundles[1:]]
    assert not any(np.array_equal(weights[0], w) for w in weights[1:])
    truth = json.loads((small_study.path).read_text())["subjects_truth"]
    assert truth["subj01"]["traits"]["size_scale"] == 1.0  # the reference subject
    assert {truth[s]["seed"] for s in small_study.ids} == {subject_seed(0, n) for n in (1, 2, 3, 4)}
    for s in small_study.ids[1:]:
        provenance = open_bundle(small_study.subject(s).path).manifest["provenance"]
        assert provenance["traits"] == truth[s]["traits"] and provenance["study_seed"] == 0


def test_shared_parts_are_hard_links(small_study, small_bundle):
    for s in small_study.ids[1:]:
        root = small_study.subject(s).path
        for rel in SHARED_FILES:
            assert os.stat(root / rel).st_ino == os.stat(small_bundle.path / rel).st_ino, rel
        assert os.stat(root / "vlm" / "captioner" / "model.safetensors").st_ino == \
            os.stat(small_bundle.path / "vlm" / "captioner" / "model.safetensors").st_ino
        assert os.stat(root / "brain_model.safetensors").st_ino != os.stat(small_bundle.path /
                                                                            "brain_model.safetensors").st_ino


def test_traits_are_deterministic_and_the_default_is_the_reference():
    assert SubjectTraits.draw(7) == SubjectTraits.draw(7) and SubjectTraits.draw(7) != SubjectTraits.draw(8)
    traits = SubjectTraits.draw(3)
    assert all(abs(x) <= 8.0 for shift in traits.centre_shift_mm.values() for x in shift)
    assert 0.85 <= traits.size_scale <= 1.2 and 0.75 <= traits.snr_scale <= 1.15
    assert SubjectTraits().describe()["category_gain"] == {}


def test_a_demo_bundle_from_other_scenes_is_refused(small_bundle, tmp_path):
    from tests.factories import copy_with_manifest
    from training.demo_world.study import build_study

    copy = copy_with_manifest(small_bundle.path, tmp_path / "demo",
                              lambda manifest: manifest["provenance"].update(seed=5))
    with pytest.raises(ValueError, match="test images differ"):
        build_study(tmp_path / "out", copy, n_subjects=2, evaluate_subjects=False)


@pytest.fixture(scope="module")
def drawn_subject():
    from training.demo_world.subject import VirtualSubject

    return VirtualSubject.create(subject_seed(0, 3), SubjectTraits.draw(subject_seed(0, 3)))


def test_a_drawn_subject_keeps_its_category_areas_true_to_their_category(drawn_subject):
    """The ground truth of a jittered subject (README, "The demo study"): each category ROI still prefers
    its category, by a wide margin."""
    from training.demo_world.scenes import generate_scenes
    from training.demo_world.study import category_preferences

    prefers = category_preferences(drawn_subject, generate_scenes(300, seed=77))
    expected = {"floc-faces": "face", "floc-bodies": "person", "floc-places": "place", "floc-words": "sign"}
    for roi, category in expected.items():
        assert prefers[roi][0] == category and prefers[roi][1] > 1.0, prefers


def test_feature_maps_shared_between_subjects_give_the_same_responses(drawn_subject):
    """The study computes the scenes' feature maps once for every subject (build time): same fMRI."""
    from training.demo_world.scenes import generate_scenes
    from training.demo_world.subject import image_feature_maps

    scenes = generate_scenes(12, seed=5)
    mine = drawn_subject.respond(scenes, rng=np.random.default_rng(1))
    shared = drawn_subject.respond(scenes, rng=np.random.default_rng(1), maps=image_feature_maps(scenes.images))
    assert np.array_equal(mine, shared)


def test_the_build_runs_on_one_thread_and_gives_the_threads_back(small_bundle, tmp_path, monkeypatch):
    import torch

    from training.demo_world import study

    seen = []
    monkeypatch.setattr(study, "_build_study", lambda *args: seen.append(torch.get_num_threads()) or tmp_path)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert study.build_study(tmp_path, small_bundle.path, n_subjects=2) == tmp_path
        assert seen == [study.BUILD_THREADS] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
