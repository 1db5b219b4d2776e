"""The virtual subject: anatomy from fsaverage5, ROIs at their places, and the planted tuning."""

import numpy as np
import pytest

from training.demo_world.scenes import CATEGORIES, COLOURS, PLACES, generate_scenes
from training.demo_world.subject import ROI_GROUPS, VirtualSubject, attribute_matrix


@pytest.fixture(scope="module")
def subject():
    return VirtualSubject.create(seed=0)


@pytest.fixture(scope="module")
def scenes():
    return generate_scenes(150, seed=11)


def test_mesh_mask_and_vertex_voxel_map(subject):
    assert 800 <= subject.n_voxels <= 1300 < len(subject.unit_vertices)
    for hemi in ("lh", "rh"):
        part = subject.mesh[hemi]
        assert part["pial"].shape == part["inflated"].shape == (10242, 3)
        assert part["faces"].shape == (20480, 3) and part["sulc"].shape == (10242,)
    rows = np.asarray(subject.vertex_voxel.sum(1)).ravel()
    assert set(np.unique(rows)) == {0.0, 1.0} and rows.sum() == len(subject.unit_vertices)
    assert (np.asarray(subject.vertex_voxel.sum(0)).ravel() >= 1).all()  # every voxel holds cortex
    pial = np.concatenate([subject.mesh[h]["pial"] for h in ("lh", "rh")])[subject.unit_vertices]
    assert (pial[:, 1] < -40).all() and (pial[:, 2] < 30).all()


def test_rois_are_named_grouped_disjoint_and_placed(subject):
    assert set(subject.rois) == set(ROI_GROUPS)
    seen = set()
    for name, roi in subject.rois.items():
        assert roi["group"] == ROI_GROUPS[name]
        assert len(roi["voxels"]) >= 8, name
        assert seen.isdisjoint(roi["voxels"])
        seen.update(roi["voxels"])
    words = np.asarray(subject.rois["floc-words"]["voxels"])
    assert (subject.voxel_hemi[words] == 1).all()  # left hemisphere only
    pial = np.concatenate([subject.mesh[h]["pial"] for h in ("lh", "rh")])
    voxel_y = (subject.vertex_voxel.T @ pial[:, 1]) / np.asarray(subject.vertex_voxel.sum(0)).ravel()
    v1_y = voxel_y[subject.rois["V1"]["voxels"]].mean()
    ppa_y = voxel_y[subject.rois["floc-places"]["voxels"]].mean()
    assert v1_y < -80 and v1_y < ppa_y  # V1 at the occipital pole, places further forward


def test_respond_is_seeded_averaged_and_noisy(subject, scenes):
    a = subject.respond(scenes, repeats=3, rng=np.random.default_rng(1))
    b = subject.respond(scenes, repeats=3, rng=np.random.default_rng(1))
    assert a.shape == (len(scenes), subject.n_voxels) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    signal = subject.signal(scenes)
    noise_sd = (a - signal).std()
    assert 1 / np.sqrt(3) * 0.9 < noise_sd < 1 / np.sqrt(3) * 1.1  # unit trial noise, 3 repeats averaged
    assert 0.8 < np.median(subject.tuning["ncsnr"]) < 1.5  # noise-ceiling SNR of 6 mm voxels (see README)


def test_category_areas_prefer_their_category(subject, scenes):
    signal = subject.signal(scenes)
    categories = np.array([a["category"] for a in scenes.attributes])
    for roi, category in (("floc-faces", "face"), ("floc-bodies", "person"), ("floc-places", "place"),
                          ("floc-words", "sign")):
        mean = signal[:, subject.rois[roi]["voxels"]].mean(1)
        preferred = mean[categories == category].mean()
        for other in set(categories) - {category}:
            assert preferred > mean[categories == other].mean() + 0.2, (roi, other)


def test_category_areas_carry_little_but_their_category(subject, scenes):
    """The ROI analysis sums weights over an ROI: a category area must not also carry colour or place."""
    signal = subject.signal(scenes)
    attributes = attribute_matrix(scenes)
    for roi, category in (("floc-faces", "face"), ("floc-bodies", "person"), ("floc-places", "place"),
                          ("floc-words", "sign")):
        mean = signal[:, subject.rois[roi]["voxels"]].mean(1)
        present = attributes[:, CATEGORIES.index(category)]
        assert np.corrcoef(mean, present)[0, 1] > 0.9, roi
        for column in range(len(CATEGORIES), len(CATEGORIES) + len(PLACES) + len(COLOURS)):
            assert abs(np.corrcoef(mean, attributes[:, column])[0, 1]) < 0.3, (roi, column)


def test_patterns_are_spatially_smooth(subject, scenes):
    signal = subject.respond(scenes)
    neighbours = subject.voxel_smoother.tocoo()
    pairs = neighbours.row != neighbours.col
    i, j = neighbours.row[pairs], neighbours.col[pairs]
    z = (signal - signal.mean(0)) / signal.std(0)
    neighbour_corr = (z[:, i] * z[:, j]).mean()
    rng = np.random.default_rng(0)
    k, m = rng.integers(0, subject.n_voxels, (2, len(i)))
    assert neighbour_corr > (z[:, k] * z[:, m]).mean() + 0.2
