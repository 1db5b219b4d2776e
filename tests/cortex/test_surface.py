import numpy as np
import pytest
import scipy.sparse as sp

from brainview.cortex import Cortex
from brainview.errors import UserError
from tests.factories import make_bundle, sphere_mesh


def identity_cortex(subdivisions=3):
    """Two spheres of radius 50 mm where every vertex is its own voxel."""
    mesh = sphere_mesh(subdivisions)
    n = sum(m["inflated"].shape[0] for m in mesh.values())
    return Cortex(mesh, sp.identity(n, format="csr", dtype=np.float32))


def great_circle(hemi, center):
    xyz = hemi.inflated - hemi.inflated.mean(axis=0)
    unit = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    return 50.0 * np.arccos(np.clip(unit @ unit[center], -1, 1))


def test_from_bundle_matches_the_bundle(tmp_path):
    bundle = make_bundle(tmp_path / "b", n_voxels=60)
    cortex = Cortex.from_bundle(bundle)
    assert cortex.n_voxels == 60
    assert cortex.n_vertices == 2 * 162
    assert cortex.hemis["rh"].offset == 162
    np.testing.assert_array_equal(cortex.rois["V2"], bundle.roi_voxels("V2"))
    assert cortex.roi_groups["FFA-1"] == "floc-faces"
    assert cortex.locate(170) == ("rh", 8)
    local = cortex.to_local([3, 170])
    assert local["lh"].tolist() == [3] and local["rh"].tolist() == [8]
    np.testing.assert_array_equal(cortex.main_voxel, np.arange(324) % 60)


def test_voxels_to_vertices_is_a_weighted_average_with_nan_for_unmapped_vertices():
    mesh = sphere_mesh(1)
    n = sum(m["inflated"].shape[0] for m in mesh.values())
    rows = [0, 0, 1]
    matrix = sp.csr_matrix(([0.25, 0.75, 1.0], (rows, [0, 1, 2])), shape=(n, 3))
    cortex = Cortex(mesh, matrix)
    values = cortex.voxels_to_vertices(np.array([4.0, 8.0, -1.0]))
    assert values.shape == (n,) and values.dtype == np.float32
    assert values[0] == pytest.approx(7.0)
    assert values[1] == pytest.approx(-1.0)
    assert np.isnan(values[2:]).all()
    assert cortex.main_voxel[:3].tolist() == [1, 2, -1]
    with pytest.raises(UserError, match="expected 3 voxel values"):
        cortex.voxels_to_vertices(np.zeros(4))


def test_vertices_to_voxels_collects_every_voxel_a_vertex_reaches():
    mesh = sphere_mesh(1)
    n = sum(m["inflated"].shape[0] for m in mesh.values())
    matrix = sp.csr_matrix(([0.5, 0.5, 1.0, 1.0], ([0, 0, 5, 7], [3, 1, 1, 2])), shape=(n, 4))
    cortex = Cortex(mesh, matrix)
    assert cortex.vertices_to_voxels([7, 0, 5, 9]).tolist() == [1, 2, 3]
    assert cortex.vertices_to_voxels([9]).size == 0
    assert cortex.vertices_to_voxels([]).size == 0


def test_roi_mask_and_outline():
    cortex = identity_cortex(3)
    lh = cortex.hemis["lh"]
    roi = cortex.brush_vertices("lh", 0, 20.0)
    mask = cortex.roi_vertex_mask(roi)
    assert mask.sum() == len(roi) and mask[roi].all()
    outline = cortex.roi_outline(roi)
    assert outline[mask].any() and not outline[~mask].any()
    # an outline vertex touches the outside; an interior vertex does not
    outside = ~mask[: lh.n_vertices]
    for v in np.flatnonzero(mask[: lh.n_vertices]):
        neighbours = lh.adjacency[v].indices
        assert outline[v] == bool(outside[neighbours].any())
    assert not cortex.roi_outline([]).any()
    with pytest.raises(UserError):
        cortex.roi_vertex_mask([cortex.n_voxels])


def test_prepare_view_computes_normals_and_outlines_once(tmp_path):
    """The worker that opens a bundle computes what the cortex view shows; the GUI thread then reads it."""
    from brainview.bundle import open_bundle

    cortex = Cortex.from_bundle(open_bundle(make_bundle(tmp_path / "b").path))
    cortex.prepare_view()
    name = next(iter(cortex.rois))
    outline = cortex.roi_outline(cortex.rois[name])
    assert cortex.roi_outline(list(cortex.rois[name])[::-1]) is outline  # the same voxel set, in any order
    assert cortex.hemis["lh"].vertex_normals() is cortex.hemis["lh"].vertex_normals()
    assert not outline.flags.writeable and not cortex.hemis["lh"].vertex_normals().flags.writeable
    assert outline.any() and cortex.roi_outline(cortex.rois[name], min_weight=0.9) is not outline


def test_brush_is_geodesic_not_euclidean():
    cortex = identity_cortex(4)
    lh = cortex.hemis["lh"]
    radius = 75.0  # 1.5 sphere radii: the Euclidean ball reaches 97 degrees round, the geodesic one 86
    brushed = cortex.brush_vertices("lh", 0, radius)
    arc = great_circle(lh, 0)
    assert (arc[brushed] <= radius + 1e-3).all()
    assert np.isin(np.flatnonzero(arc <= 0.85 * radius), brushed).all()
    euclid = np.flatnonzero(np.linalg.norm(lh.inflated - lh.inflated[0], axis=1) <= radius)
    assert len(euclid) > len(brushed) + 50


def test_brush_distances_follow_the_surface():
    cortex = identity_cortex(4)
    rh = cortex.hemis["rh"]
    local, distances = rh.geodesic_ball(1234, 20.0, "inflated")
    arc = great_circle(rh, 1234)[local]
    assert distances[local == 1234] == 0
    assert (distances >= 0.999 * arc - 0.05).all()  # edge paths are no shorter than the surface (up to chords)
    assert (distances <= 1.2 * arc + 2.0).all()  # and only a little longer
    brushed = cortex.brush_vertices("rh", 5, 10.0, surface="pial")
    assert brushed.min() >= rh.offset and 5 + rh.offset in brushed


def test_brush_of_zero_radius_is_the_centre_and_bad_input_fails():
    cortex = identity_cortex(2)
    assert cortex.brush_vertices("lh", 7, 0.0).tolist() == [7]
    with pytest.raises(IndexError):
        cortex.brush_vertices("lh", 10_000, 5.0)
    with pytest.raises(ValueError):
        cortex.hemis["lh"].coords("white")


def test_vertex_normals_point_outward_on_a_sphere():
    cortex = identity_cortex(2)
    lh = cortex.hemis["lh"]
    radial = lh.inflated - lh.inflated.mean(axis=0)
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    normals = lh.vertex_normals()
    assert np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-5)
    assert (np.abs((normals * radial).sum(axis=1)) > 0.95).all()


def test_the_selection_fill_shows_its_edge_and_painted_vertices_without_a_voxel():
    """Inside, edge and "painted but no voxel" are told apart: a stroke over the medial wall (no voxel)
    still shows where it went, and the region's edge is drawn apart from its inside."""
    from brainview.cortex.surface import FILL_EDGE, FILL_INSIDE, FILL_NO_VOXEL, FILL_NONE

    mesh = sphere_mesh(2)
    n = sum(m["inflated"].shape[0] for m in mesh.values())
    mapped = np.arange(n) < n - 20  # the last 20 vertices (rh) map to no voxel
    matrix = sp.csr_matrix((np.ones(mapped.sum()), (np.flatnonzero(mapped), np.flatnonzero(mapped) % 40)),
                           shape=(n, 40))
    cortex = Cortex(mesh, matrix)
    fill = cortex.selection_fill([3, 4, 5], painted_vertices=[n - 1, n - 2, 3])
    inside = cortex.roi_vertex_mask([3, 4, 5])
    assert set(np.unique(fill[inside])) <= {FILL_INSIDE, FILL_EDGE} and (fill[inside] == FILL_EDGE).any()
    np.testing.assert_array_equal(fill[cortex.boundary(inside)], FILL_EDGE)
    assert fill[n - 1] == fill[n - 2] == FILL_NO_VOXEL and fill[3] != FILL_NO_VOXEL  # vertex 3 has its voxel
    assert (fill[~inside & (np.arange(n) < n - 2)] == FILL_NONE).all()
    assert cortex.selection_fill([]).max() == FILL_NONE
