"""The NSD export's flatmaps: FreeSurfer ``?h.full.flat.patch.3d`` files (written here in FreeSurfer's
own binary format) are read, turned into ``flat``/``flat_faces`` and carried into the bundle's mesh."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from brainview.cortex.flatmap import flatmap, read_patch
from brainview.errors import UserError
from training.nsd.layout import NsdLayout
from training.nsd.surfaces import FLAT_PATCH, read_surfaces


def write_patch(path, vertices, coords, border=()):
    """FreeSurfer's patch format: int32 -1, int32 n, then per point int32 (vertex + 1, negative on the
    border) and float32 x, y, z; big-endian."""
    ids = np.asarray(vertices, dtype=np.int64) + 1
    ids[np.isin(vertices, border)] *= -1
    points = np.empty(len(ids), dtype=[("vertex", ">i4"), ("x", ">f4"), ("y", ">f4"), ("z", ">f4")])
    points["vertex"], points["x"], points["y"], points["z"] = ids, coords[:, 0], coords[:, 1], coords[:, 2]
    with open(path, "wb") as handle:
        handle.write(np.array([-1, len(ids)], dtype=">i4").tobytes() + points.tobytes())


def hemisphere_patch(pial: np.ndarray):
    """Keep the vertices of the lower three quarters of the sphere, flattened by projecting onto x, y."""
    keep = np.flatnonzero(pial[:, 2] < 0.5 * pial[:, 2].max())
    coords = np.column_stack([pial[keep, 0], pial[keep, 1], np.zeros(len(keep))]).astype(np.float32)
    return keep, coords


def test_read_patch_round_trip(tmp_path):
    coords = np.arange(12, dtype=np.float32).reshape(4, 3)
    write_patch(tmp_path / "lh.patch", [5, 0, 7, 2], coords, border=[0, 7])
    vertices, read = read_patch(tmp_path / "lh.patch")
    assert vertices.tolist() == [5, 0, 7, 2]
    np.testing.assert_array_equal(read, coords)
    (tmp_path / "bad.patch").write_bytes(np.array([2, 1], dtype=">i4").tobytes())
    with pytest.raises(UserError, match="not a FreeSurfer patch"):
        read_patch(tmp_path / "bad.patch")
    with pytest.raises(UserError, match="announces 3 points"):
        (tmp_path / "short.patch").write_bytes(np.array([-1, 3], dtype=">i4").tobytes())
        read_patch(tmp_path / "short.patch")


def test_flatmap_keeps_the_faces_inside_the_patch():
    faces = np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    flat = flatmap(np.array([0, 1, 2, 3]), np.ones((4, 3), dtype=np.float32), faces, 5)
    assert flat["flat_faces"].tolist() == [[0, 1, 2], [1, 2, 3]] and flat["flat"].shape == (5, 3)
    assert np.isfinite(flat["flat"]).all()
    with pytest.raises(UserError, match="vertex ids"):
        flatmap(np.array([9]), np.ones((1, 3), dtype=np.float32), faces, 5)


def test_nsd_surfaces_carry_the_flat_patches_into_the_bundle(tiny_nsd, tmp_path):
    root = tmp_path / "nsd"
    surf = tiny_nsd.layout.surface("lh", "pial").parent
    shutil.copytree(surf, root / surf.relative_to(tiny_nsd.root))
    layout = NsdLayout(root, tiny_nsd.layout.subject)
    assert "flat" not in read_surfaces(layout)["lh"]  # no patches: no flatmap
    for hemi in ("lh", "rh"):
        mesh = read_surfaces(layout)[hemi]
        keep, coords = hemisphere_patch(mesh["pial"])
        write_patch(layout.surface(hemi, FLAT_PATCH), keep, coords, border=keep[:3])
        if hemi == "lh":
            assert "flat" not in read_surfaces(layout)["lh"]  # one hemisphere only: none
    mesh = read_surfaces(layout)
    for hemi in ("lh", "rh"):
        keep, coords = hemisphere_patch(mesh[hemi]["pial"])
        np.testing.assert_allclose(mesh[hemi]["flat"][keep], coords)
        inside = np.isin(mesh[hemi]["faces"], keep).all(axis=1)
        assert len(mesh[hemi]["flat_faces"]) == inside.sum() < len(mesh[hemi]["faces"])

    import scipy.sparse as sp

    from brainview.cortex import Cortex

    n = sum(len(mesh[h]["inflated"]) for h in ("lh", "rh"))
    cortex = Cortex(mesh, sp.identity(n, format="csr"))
    assert cortex.surfaces == ("inflated", "pial", "flat")
    assert set(cortex.hemis["lh"].drawn_vertices("flat")) <= set(hemisphere_patch(mesh["lh"]["pial"])[0])
