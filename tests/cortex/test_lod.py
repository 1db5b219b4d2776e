"""The level-of-detail mesh: vertex clustering with a map from coarse to full vertices (known answers)."""

import numpy as np
import pytest

from brainview.cortex import Cortex
from brainview.cortex.lod import decimate
from tests.factories import icosphere, sphere_mesh


def grid(n: int = 9):
    """An n × n grid of unit spacing in z = 0, every square split along the same diagonal, facing +z."""
    x, y = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    coords = np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], axis=1).astype(np.float32)
    vid = lambda i, j: i * n + j  # noqa: E731
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            faces += [(vid(i, j), vid(i + 1, j), vid(i + 1, j + 1)), (vid(i, j), vid(i + 1, j + 1), vid(i, j + 1))]
    return coords, np.array(faces, dtype=np.int32)


def normals_z(coords, faces):
    a, b, c = (coords[faces[:, k]] for k in range(3))
    return np.cross(b - a, c - a)[:, 2]


def test_a_grid_collapses_into_its_three_by_three_blocks_centres():
    coords, faces = grid(9)
    coarse = decimate(coords, faces, cell_size=3.0)
    # block (I, J) holds vertices 3I..3I+2 × 3J..3J+2; its centroid is its middle vertex (3I+1, 3J+1)
    middles = [(3 * i + 1) * 9 + (3 * j + 1) for i in range(3) for j in range(3)]
    assert coarse.vertex_map.tolist() == middles
    np.testing.assert_array_equal(coarse.coords, coords[middles])
    # the coarse mesh is the 3 × 3 grid of the middles, split along the same diagonal: 2 × 2 × 2 triangles
    expected = {tuple(sorted(t)) for t in grid(3)[1].tolist()}
    assert {tuple(sorted(t)) for t in coarse.faces.tolist()} == expected
    assert len(coarse.faces) == 8
    assert (normals_z(coarse.coords, coarse.faces) > 0).all()  # orientation kept: still facing +z


def test_every_coarse_vertex_is_its_nearest_full_vertex_and_colours_carry_over():
    coords, faces = icosphere(4, 50.0)
    coarse = decimate(coords, faces, target_vertices=300)
    assert 200 <= coarse.n_vertices <= 400
    assert np.unique(coarse.vertex_map).size == coarse.n_vertices
    distances = np.linalg.norm(coarse.coords[:, None, :] - coords[None, :, :], axis=2)
    np.testing.assert_array_equal(distances.argmin(axis=1), coarse.vertex_map)
    colors = np.random.default_rng(0).integers(0, 255, (coords.shape[0], 3), dtype=np.uint8)
    carried = coarse.carry(colors)
    for i in (0, 17, coarse.n_vertices - 1):
        np.testing.assert_array_equal(carried[i], colors[coarse.vertex_map[i]])
    # every face joins three distinct coarse vertices, none twice
    assert (np.sort(coarse.faces, axis=1)[:, [0, 1]] != np.sort(coarse.faces, axis=1)[:, [1, 2]]).all()
    assert np.unique(np.sort(coarse.faces, axis=1), axis=0).shape[0] == coarse.faces.shape[0]
    # every coarse face of the sphere faces outward, as the full faces do (none drawn back to front)
    centre = coarse.coords[coarse.faces].mean(axis=1)
    a, b, c = (coarse.coords[coarse.faces[:, k]] for k in range(3))
    assert (np.einsum("ij,ij->i", np.cross(b - a, c - a), centre) > 0).all()


def test_changed_full_vertices_name_only_the_coarse_vertices_that_are_them():
    coords, faces = icosphere(3, 50.0)
    coarse = decimate(coords, faces, target_vertices=100)
    kept, dropped = coarse.vertex_map[[3, 5]], np.setdiff1d(np.arange(coords.shape[0]), coarse.vertex_map)[:4]
    assert sorted(coarse.coarse_vertices(np.concatenate([kept, dropped])).tolist()) == [3, 5]
    assert sorted(coarse.coarse_vertices(slice(None)).tolist()) == list(range(coarse.n_vertices))


def test_hemisphere_lods_are_cached_and_pial_follows_the_inflated_clustering():
    mesh = sphere_mesh(4)
    mesh["lh"]["pial"] = mesh["lh"]["inflated"] * 0.9
    cortex = Cortex(mesh, np.eye(2 * mesh["lh"]["inflated"].shape[0], 3, dtype=np.float32))
    lh = cortex.hemis["lh"]
    inflated = lh.lod("inflated", 400)
    assert lh.lod("inflated", 400) is inflated
    pial = lh.lod("pial", 400)
    np.testing.assert_array_equal(pial.vertex_map, inflated.vertex_map)
    assert pial.faces is inflated.faces
    np.testing.assert_allclose(pial.coords, lh.pial[inflated.vertex_map])
    with pytest.raises(ValueError):
        lh.lod("flat")


def test_decimate_needs_a_size():
    coords, faces = grid(4)
    with pytest.raises(ValueError):
        decimate(coords, faces)


def test_no_coarse_face_is_drawn_back_to_front_on_a_folded_surface():
    coords, faces = icosphere(5, 50.0)
    unit = coords / np.linalg.norm(coords, axis=1, keepdims=True)
    ripples = 50 + 4 * np.sin(6 * unit[:, 0]) * np.sin(6 * unit[:, 1]) * np.sin(6 * unit[:, 2])
    bumpy = (unit * ripples[:, None]).astype(np.float32)  # gyri and sulci, roughly
    a, b, c = (bumpy[faces[:, k]].astype(float) for k in range(3))
    full_normals = np.zeros_like(bumpy, dtype=float)
    for k in range(3):
        np.add.at(full_normals, faces[:, k], np.cross(b - a, c - a))
    for target in (2000, 4000):  # clustering turns some triangles over here unless it rewinds them
        coarse = decimate(bumpy, faces, target_vertices=target)
        tri = coarse.coords[coarse.faces].astype(float)
        facing = np.einsum("ij,ij->i", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]),
                           full_normals[coarse.vertex_map[coarse.faces]].sum(axis=1))
        assert (facing > 0).all()
