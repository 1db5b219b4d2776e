"""A coarse copy of a hemisphere's mesh for rendering while things move (level of detail), Qt- and VTK-free.

Software OpenGL needs about a second per frame for 2 × 227k vertices; a copy with a tenth of the
vertices renders at the cost of clearing the window. The copy comes from vertex clustering: the
surface's bounding box is cut into cubic cells, every cell's vertices collapse into one, and the
triangles whose corners fall into three different cells survive. The vertex a cell collapses
into is the cell's member nearest to the cell's centroid, so every coarse vertex *is* a full
vertex (``vertex_map``): any per-vertex colour carries over by indexing, a change of some full
vertices changes only the coarse vertices that are them, and the same coarse triangles serve every
surface that shares the full mesh's faces (pial from the inflated clustering, so the cells follow
the mesh and never join the two banks of a sulcus).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True, eq=False)
class Decimated:
    """A coarse mesh whose vertex ``i`` is full vertex ``vertex_map[i]`` (positions: ``coords``)."""

    coords: np.ndarray  # (m, 3) float32: the full vertices' positions
    faces: np.ndarray  # (k, 3) int32 into the coarse vertices, orientation kept
    vertex_map: np.ndarray  # (m,) int64, distinct full vertex ids
    n_full: int

    @property
    def n_vertices(self) -> int:
        return int(self.vertex_map.size)

    @cached_property
    def _coarse_of_full(self) -> np.ndarray:
        index = np.full(self.n_full, -1, dtype=np.int64)
        index[self.vertex_map] = np.arange(self.vertex_map.size)
        return index

    def carry(self, values: np.ndarray) -> np.ndarray:
        """Per-vertex ``values`` of the full mesh (first axis) on the coarse one."""
        return values[self.vertex_map]

    def coarse_vertices(self, full_vertices) -> np.ndarray:
        """Coarse ids of those of ``full_vertices`` (ids, a bool mask or a slice) that the coarse mesh keeps."""
        picked = self._coarse_of_full[full_vertices]
        return picked[picked >= 0]

    def moved_to(self, coords: np.ndarray) -> "Decimated":
        """The same coarse mesh on another surface of the full mesh (``coords``: its full positions)."""
        return Decimated(np.ascontiguousarray(coords[self.vertex_map], dtype=np.float32), self.faces,
                         self.vertex_map, self.n_full)


def decimate(coords: np.ndarray, faces: np.ndarray, *, target_vertices: int | None = None,
             cell_size: float | None = None) -> Decimated:
    """Cluster the vertices of ``faces`` into cubic cells of ``cell_size`` (or a size that leaves about
    ``target_vertices``) and keep the triangles that span three cells; vertices no face uses are dropped."""
    coords = np.asarray(coords)
    faces = np.asarray(faces, dtype=np.int64)
    in_use = np.zeros(coords.shape[0], dtype=bool)
    in_use[faces.ravel()] = True
    used = np.flatnonzero(in_use)
    local = np.cumsum(in_use) - 1  # full id -> index into used
    faces = local[faces]
    xyz = coords[used].astype(np.float64)
    if cell_size is None:
        if not target_vertices or target_vertices <= 0:
            raise ValueError("give target_vertices or cell_size")
        cell_size = _cell_size_for(xyz, faces, target_vertices)
    labels, n_cells = _cells(xyz, cell_size)
    counts = np.bincount(labels, minlength=n_cells)
    centroids = np.stack([np.bincount(labels, weights=xyz[:, k], minlength=n_cells) for k in range(3)], 1)
    centroids /= counts[:, None]
    # per cell, the member nearest to the centroid: sort by (cell, distance) and take each cell's first
    distance = np.linalg.norm(xyz - centroids[labels], axis=1)
    order = np.lexsort((distance, labels))
    first = order[np.r_[0, np.flatnonzero(np.diff(labels[order])) + 1]]
    vertex_map = used[first]  # cell c -> full vertex (cells are numbered 0..n_cells-1 in sorted order)

    coarse = labels[faces]
    keep = (coarse[:, 0] != coarse[:, 1]) & (coarse[:, 1] != coarse[:, 2]) & (coarse[:, 0] != coarse[:, 2])
    coarse = coarse[keep]
    corners = np.sort(coarse, axis=1)
    key = (corners[:, 0] * n_cells + corners[:, 1]) * n_cells + corners[:, 2]  # < 2**63 below 2M cells
    _, unique = np.unique(key, return_index=True)  # one of each triangle
    coarse = coarse[np.sort(unique)]
    # a cell can pull a triangle over its neighbours, turned back to front (drawn dark): wind every coarse
    # triangle the way the full surface faces at its corners
    tri = xyz[first[coarse]]
    facing = np.einsum("ij,ij->i", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]),
                       _vertex_normals(xyz, faces)[first[coarse]].sum(axis=1))
    coarse[facing < 0] = coarse[facing < 0][:, ::-1]
    coarse = coarse.astype(np.int32)
    return Decimated(np.ascontiguousarray(coords[vertex_map], dtype=np.float32), coarse,
                     vertex_map.astype(np.int64), int(coords.shape[0]))


def _vertex_normals(xyz: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (not normalized: only their direction is used)."""
    a, b, c = (xyz[faces[:, k]] for k in range(3))
    face_normals = np.cross(b - a, c - a)
    return np.stack([np.bincount(faces.ravel(), weights=np.repeat(face_normals[:, k], 3), minlength=xyz.shape[0])
                     for k in range(3)], axis=1)


def _cells(xyz: np.ndarray, cell_size: float) -> tuple[np.ndarray, int]:
    """Cell number (0..n-1, in the order of the cells' keys) of every point, and the number of cells."""
    key = np.floor((xyz - xyz.min(axis=0)) / cell_size).astype(np.int64)
    span = key.max(axis=0) + 1
    flat = (key[:, 0] * span[1] + key[:, 1]) * span[2] + key[:, 2]
    cells, labels = np.unique(flat, return_inverse=True)
    return labels.ravel(), int(cells.size)


def _cell_size_for(xyz: np.ndarray, faces: np.ndarray, target: int) -> float:
    """A cell size that leaves about ``target`` occupied cells: start from the surface area (a surface
    crosses about area / size² cells), then correct by the count (it goes as 1 / size²)."""
    tri = xyz[faces]
    area = 0.5 * float(np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum())
    size = np.sqrt(max(area, 1e-12) / target)
    for _ in range(3):
        _, n = _cells(xyz, size)
        size *= np.sqrt(n / target)
    return float(size)
