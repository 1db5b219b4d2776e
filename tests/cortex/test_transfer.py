"""Carrying a selection between subjects through the surface (brainview.cortex.transfer), known answers
on constructed meshes."""

import numpy as np
import pytest
import scipy.sparse as sp

from brainview.bundle.files import BundleError
from brainview.cortex.surface import Cortex
from brainview.cortex.transfer import (SurfaceSpace, can_transfer, read_fsaverage_map, transfer_edits,
                                       transfer_vertices)
from brainview.errors import UserError
from tests.factories import icosphere


def _cortex(subdivisions: int, voxel_of=None) -> Cortex:
    """Two unit-ish spheres as hemispheres; vertex i of each maps to voxel ``voxel_of(vertex position)``."""
    mesh, rows, cols = {}, [], []
    offset = 0
    for hemi, x in (("lh", -60.0), ("rh", 60.0)):
        v, f = icosphere(subdivisions, 50.0, (x, 0.0, 0.0))
        mesh[hemi] = {"inflated": v, "pial": v, "faces": f, "sulc": np.zeros(len(v), dtype=np.float32)}
        for i, p in enumerate(v):
            rows.append(offset + i)
            cols.append(voxel_of(hemi, p) if voxel_of else offset + i)
        offset += len(v)
    n_vox = max(cols) + 1
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(offset, n_vox))
    return Cortex(mesh, matrix, {"FFA": {"group": "floc-faces", "voxels": [0, 1]}})


def _nearest_map(common: np.ndarray, native: np.ndarray) -> np.ndarray:
    """For each common-surface vertex, the nearest native vertex (what white-to-fsaverage holds)."""
    d = np.linalg.norm(common[:, None] - native[None], axis=2)
    return d.argmin(1)


def test_index_maps_compose_through_fsaverage():
    """A hand-made case: A vertex 1 owns fsaverage vertices 1 and 2, which B gives to its vertices 0 and 1."""
    a, b = _cortex(0), _cortex(0)  # 12 vertices per hemisphere; the maps below make them differ
    to_a = {"lh": np.array([0, 1, 1, 2, 3]), "rh": np.array([5, 5, 6, 7, -1])}
    to_b = {"lh": np.array([2, 0, 1, 1, -1]), "rh": np.array([0, 1, 2, 3, 4])}
    space_a, space_b = SurfaceSpace("fsaverage", (5, 5), to_a), SurfaceSpace("fsaverage", (5, 5), to_b)
    moved = transfer_vertices(np.array([1]), a, space_a, b, space_b)
    assert moved.tolist() == [0, 1]
    # rh vertex 5 of A (global 12 + 5) owns fsaverage 0 and 1 → B's rh vertices 0 and 1 (global 12, 13)
    moved = transfer_vertices(np.array([12 + 5, 3]), a, space_a, b, space_b)
    assert moved.tolist() == [12, 13]  # lh vertex 3 of A owns fsaverage 4, which B does not map (-1)


def test_a_cap_lands_on_the_same_cap_of_a_finer_subject():
    coarse, fine = _cortex(2), _cortex(3)  # 162 and 642 vertices per hemisphere
    common = {h: icosphere(3, 50.0, (x, 0.0, 0.0))[0] for h, x in (("lh", -60.0), ("rh", 60.0))}
    spaces = [SurfaceSpace("fsaverage", (642, 642), {h: _nearest_map(common[h], c.hemis[h].pial) for h in common})
              for c in (coarse, fine)]
    lh = coarse.hemis["lh"].pial
    cap = np.flatnonzero(lh[:, 2] > 40.0)  # the top of the left sphere
    moved = transfer_vertices(cap, coarse, spaces[0], fine, spaces[1])
    fine_lh = fine.hemis["lh"].pial
    assert moved.max() < fine.hemis["lh"].n_vertices  # stays in the left hemisphere
    assert (fine_lh[moved, 2] > 35.0).all()  # nothing outside the cap (up to one coarse vertex spacing)
    inner = np.flatnonzero(fine_lh[:, 2] > 43.0)
    assert np.isin(inner, moved).all()  # the cap's interior is covered, no holes


def test_same_mesh_is_the_identity_and_different_surfaces_are_refused():
    a = _cortex(1)
    same = SurfaceSpace("mesh", ("m",))
    assert transfer_vertices(np.array([5, 3, 3]), a, same, a, same).tolist() == [3, 5]
    other = SurfaceSpace("mesh", ("n",))
    assert can_transfer(same, other)
    with pytest.raises(UserError, match="cannot carry"):
        transfer_vertices(np.array([1]), a, same, a, other)
    assert "fsaverage" in can_transfer(same, SurfaceSpace("fsaverage", (1, 1), {}))


def test_edits_carry_rois_by_name_and_painted_voxels_through_their_vertices():
    # A: one voxel per vertex; B: each voxel holds the 2 vertices with the same (rounded) height
    a = _cortex(1)
    b = _cortex(1, voxel_of=lambda hemi, p: int(np.floor((p[2] + 50) / 10)) + (0 if hemi == "lh" else 20))
    space = SurfaceSpace("mesh", ("same",))
    painted_voxel = 4  # A's voxel 4 is lh vertex 4
    edits = {"rois": ["FFA", "not-in-B"], "painted_voxels": [painted_voxel], "erased_voxels": [],
             "painted_vertices": [], "erased_vertices": []}
    moved = transfer_edits(edits, a, space, b, space)
    assert moved["rois"] == ["FFA"]
    assert moved["painted_vertices"] == [4]
    assert moved["painted_voxels"] == [int(b.main_voxel[4])]


def test_bundle_mapping_file_is_read_and_checked(tmp_path):
    (tmp_path / "cortex").mkdir()
    np.savez(tmp_path / "cortex" / "fsaverage.npz", lh=np.array([0, 1, -1], dtype=np.int32),
             rh=np.array([2, 2, 0], dtype=np.int32))
    mapping = read_fsaverage_map(tmp_path, {"lh": 2, "rh": 3})
    assert mapping["lh"].tolist() == [0, 1, -1] and mapping["rh"].tolist() == [2, 2, 0]
    with pytest.raises(BundleError, match="outside"):
        read_fsaverage_map(tmp_path, {"lh": 1, "rh": 3})
    assert read_fsaverage_map(tmp_path / "nothing", {"lh": 1, "rh": 1}) is None
