"""Cortical surfaces and the vertex<->voxel map of a bundle (DESIGN.md §3), Qt-free.

Vertex ids come in two kinds. *Local* ids index one hemisphere's mesh (what a picker on that
mesh returns). *Global* ids index the rows of ``vertex_voxel``: the left hemisphere's vertices
first, then the right's. Cortex-level methods take and return global ids unless they take a
``hemi`` argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from brainview.cortex.lod import Decimated, decimate
from brainview.errors import UserError

HEMISPHERES = ("lh", "rh")
#: every surface a bundle can have; ``flat`` is optional (see :attr:`Hemisphere.surfaces`)
SURFACES = ("inflated", "pial", "flat")
#: what the selection layer draws at a vertex (:meth:`Cortex.selection_fill`)
FILL_NONE, FILL_INSIDE, FILL_EDGE, FILL_NO_VOXEL = 0, 1, 2, 3


def _unique_edges(faces: np.ndarray, n: int) -> np.ndarray:
    """Unique undirected edges (E, 2) of ``faces``, smaller id first (deduplicated by a sparse matrix,
    faster than np.unique)."""
    pairs = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    low, high = np.minimum(pairs[:, 0], pairs[:, 1]), np.maximum(pairs[:, 0], pairs[:, 1])
    upper = sp.csr_matrix((np.ones(low.size, dtype=np.int32), (low, high)), shape=(n, n))
    upper.sum_duplicates()
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(upper.indptr))
    return np.stack([rows, upper.indices.astype(np.int64)], axis=1)


@dataclass(eq=False)
class Hemisphere:
    """One hemisphere's meshes (inflated and pial share faces), sulcal depth and row offset.

    The optional flatmap (``flat``, with its own ``flat_faces``: a subset of ``faces``, cut along the
    medial wall and the relaxation cuts) keeps every vertex, so per-vertex data need no remapping;
    vertices that no flat face references (the medial wall) are not drawn, picked or fitted to.
    """

    name: str
    inflated: np.ndarray
    pial: np.ndarray
    faces: np.ndarray
    sulc: np.ndarray
    offset: int
    flat: np.ndarray | None = None
    flat_faces: np.ndarray | None = None
    _graphs: dict = field(default_factory=dict, repr=False)
    _normals: dict = field(default_factory=dict, repr=False)
    _lods: dict = field(default_factory=dict, repr=False)

    @property
    def n_vertices(self) -> int:
        return int(self.inflated.shape[0])

    @property
    def surfaces(self) -> tuple[str, ...]:
        """The surfaces this hemisphere has, in :data:`SURFACES` order."""
        return SURFACES if self.flat is not None else SURFACES[:2]

    def _check(self, surface: str) -> None:
        if surface not in self.surfaces:
            raise ValueError(f"surface must be one of {self.surfaces}, got {surface!r}")

    def coords(self, surface: str = "inflated") -> np.ndarray:
        self._check(surface)
        return {"inflated": self.inflated, "pial": self.pial, "flat": self.flat}[surface]

    def surface_faces(self, surface: str = "inflated") -> np.ndarray:
        """The triangles drawn on ``surface`` (the flatmap's cut set on ``flat``)."""
        self._check(surface)
        return self.flat_faces if surface == "flat" else self.faces

    def drawn_vertices(self, surface: str = "inflated") -> np.ndarray:
        """Sorted ids of the vertices some face of ``surface`` references: the bounds of what is drawn."""
        if surface != "flat":
            return np.arange(self.n_vertices)
        return np.unique(self.surface_faces(surface))

    @cached_property
    def edges(self) -> np.ndarray:
        """Unique undirected mesh edges (E, 2) of the full mesh, smaller id first."""
        return _unique_edges(self.faces, self.n_vertices)

    @cached_property
    def adjacency(self) -> sp.csr_matrix:
        """Symmetric 0/1 vertex adjacency (neighbours along mesh edges)."""
        return self._symmetric(self.edges, np.ones(len(self.edges), dtype=np.float32))

    def edge_graph(self, surface: str = "inflated") -> sp.csr_matrix:
        """Symmetric sparse graph whose entries are edge lengths in mm on ``surface`` (cached); on the flatmap
        only its own edges, so a brush does not jump across a cut."""
        if surface not in self._graphs:
            edges = self.edges if surface != "flat" else _unique_edges(self.flat_faces, self.n_vertices)
            xyz = self.coords(surface).astype(np.float64)
            lengths = np.linalg.norm(xyz[edges[:, 0]] - xyz[edges[:, 1]], axis=1)
            # a zero-length edge would vanish from a sparse matrix and cut the graph
            self._graphs[surface] = self._symmetric(edges, np.maximum(lengths, 1e-9))
        return self._graphs[surface]

    def _symmetric(self, edges: np.ndarray, weights: np.ndarray) -> sp.csr_matrix:
        i, j = edges[:, 0], edges[:, 1]
        n = self.n_vertices
        graph = sp.csr_matrix((np.concatenate([weights, weights]), (np.concatenate([i, j]), np.concatenate([j, i]))),
                              shape=(n, n))
        graph.sort_indices()
        return graph

    def lod(self, surface: str = "inflated", target_vertices: int = 20_000) -> Decimated:
        """A coarse copy of ``surface`` with about ``target_vertices`` (cached; see :mod:`brainview.cortex.lod`).

        Pial is clustered along the inflated surface, so the coarse triangles follow the mesh, not space."""
        self._check(surface)
        key = (surface, int(target_vertices))
        if key not in self._lods:
            if surface == "pial":
                self._lods[key] = self.lod("inflated", target_vertices).moved_to(self.pial)
            else:
                self._lods[key] = decimate(self.coords(surface), self.surface_faces(surface),
                                           target_vertices=target_vertices)
        return self._lods[key]

    def prepare_brush(self, surface: str = "inflated") -> None:
        """Build the edge graph now, so that the first dab does not pay for it."""
        self.edge_graph(surface)

    def geodesic_ball(self, center: int, radius_mm: float, surface: str = "inflated") -> tuple[np.ndarray, np.ndarray]:
        """Local ids and distances of the vertices within ``radius_mm`` of ``center`` along the mesh edges.

        Dijkstra with ``limit`` stops at the radius, so the cost follows the brush, not the mesh
        (about a millisecond on a 163,842-vertex hemisphere; see tests/benchmarks/brush.py).
        Edge paths zigzag, so they overestimate the true surface distance slightly (a few percent).
        """
        if not 0 <= center < self.n_vertices:
            raise IndexError(f"vertex {center} is outside 0..{self.n_vertices - 1} of {self.name}")
        distances = dijkstra(self.edge_graph(surface), directed=True, indices=int(center), limit=float(radius_mm))
        inside = np.flatnonzero(np.isfinite(distances))
        return inside, distances[inside]

    def boundary(self, mask: np.ndarray) -> np.ndarray:
        """Vertices of ``mask`` (bool, local) with at least one neighbour outside it: the outline."""
        mask = np.asarray(mask, dtype=bool)
        inside = np.flatnonzero(mask)  # only their rows: a brush dab's region, not the whole mesh
        outline = np.zeros_like(mask)
        if inside.size:
            outline[inside] = (self.adjacency[inside] @ (~mask).astype(np.float32)) > 0
        return outline

    def vertex_normals(self, surface: str = "inflated") -> np.ndarray:
        """Unit area-weighted vertex normals (V, 3) float32, for shading (cached, read-only)."""
        if surface not in self._normals:
            normals = self._area_weighted_normals(surface)
            normals.setflags(write=False)
            self._normals[surface] = normals
        return self._normals[surface]

    def _area_weighted_normals(self, surface: str) -> np.ndarray:
        xyz = self.coords(surface).astype(np.float64)
        faces = self.surface_faces(surface)
        a, b, c = (xyz[faces[:, k]] for k in range(3))
        face_normals = np.cross(b - a, c - a)
        normals = np.stack([np.bincount(faces.ravel(), weights=np.repeat(face_normals[:, k], 3),
                                        minlength=self.n_vertices) for k in range(3)], axis=1)
        length = np.linalg.norm(normals, axis=1, keepdims=True)
        return (normals / np.where(length > 0, length, 1.0)).astype(np.float32)


class Cortex:
    """Both hemispheres, the vertex->voxel map and the atlas ROIs of one bundle."""

    def __init__(self, mesh: Mapping[str, Mapping[str, np.ndarray]], vertex_voxel: sp.spmatrix,
                 rois: Mapping[str, Mapping] | None = None):
        offset = 0
        self.hemis: dict[str, Hemisphere] = {}
        for name in HEMISPHERES:
            part = mesh[name]
            flat = part.get("flat")
            hemi = Hemisphere(name, np.asarray(part["inflated"], dtype=np.float32),
                              np.asarray(part["pial"], dtype=np.float32), np.asarray(part["faces"], dtype=np.int32),
                              np.asarray(part["sulc"], dtype=np.float32), offset,
                              None if flat is None else np.asarray(flat, dtype=np.float32),
                              None if flat is None else np.asarray(part["flat_faces"], dtype=np.int32))
            self.hemis[name] = hemi
            offset += hemi.n_vertices
        self.vertex_voxel = sp.csr_matrix(vertex_voxel, dtype=np.float32)
        if self.vertex_voxel.shape[0] != offset:
            raise ValueError(f"vertex_voxel has {self.vertex_voxel.shape[0]} rows but the meshes have {offset} vertices")
        self.vertex_voxel.eliminate_zeros()
        self.vertex_voxel.sort_indices()
        self.rois: dict[str, np.ndarray] = {}
        self.roi_groups: dict[str, str] = {}
        for name, spec in (rois or {}).items():
            self.rois[name] = np.unique(np.asarray(spec["voxels"], dtype=np.int64))
            self.roi_groups[name] = str(spec.get("group", ""))
        self._outlines: dict[tuple[bytes, float], np.ndarray] = {}

    def prepare_view(self, surface: str = "inflated") -> None:
        """Compute now what showing the cortex needs (shading normals, the atlas ROIs' outlines), so a
        worker that opens a bundle pays for it instead of the GUI thread (0.3 s at 2 × 164k vertices)."""
        for hemi in self.hemis.values():
            hemi.vertex_normals(surface)
        for voxels in self.rois.values():
            self.roi_outline(voxels)

    @classmethod
    def from_bundle(cls, bundle) -> "Cortex":
        return cls(bundle.mesh, bundle.vertex_voxel, bundle.rois)

    @property
    def n_vertices(self) -> int:
        return int(self.vertex_voxel.shape[0])

    @property
    def surfaces(self) -> tuple[str, ...]:
        """Surfaces both hemispheres have (``flat`` only when the bundle ships a flatmap)."""
        return tuple(s for s in SURFACES if all(s in h.surfaces for h in self.hemis.values()))

    @property
    def n_voxels(self) -> int:
        return int(self.vertex_voxel.shape[1])

    @cached_property
    def _row_weight(self) -> np.ndarray:
        return np.asarray(self.vertex_voxel.sum(axis=1)).ravel()

    @cached_property
    def main_voxel(self) -> np.ndarray:
        """For each global vertex the voxel with the largest weight, -1 where it maps to none (for hover)."""
        matrix = self.vertex_voxel
        counts = np.diff(matrix.indptr)
        order = np.lexsort((-matrix.data, np.repeat(np.arange(self.n_vertices), counts)))
        best = np.full(self.n_vertices, -1, dtype=np.int64)
        rows = np.flatnonzero(counts)
        best[rows] = matrix.indices[order[matrix.indptr[rows]]]
        return best

    def hemi_slice(self, hemi: str) -> slice:
        h = self.hemis[hemi]
        return slice(h.offset, h.offset + h.n_vertices)

    def to_global(self, hemi: str, local_ids) -> np.ndarray:
        return np.asarray(local_ids, dtype=np.int64) + self.hemis[hemi].offset

    def to_local(self, global_ids) -> dict[str, np.ndarray]:
        """Split global ids into local ids per hemisphere."""
        ids = np.asarray(global_ids, dtype=np.int64)
        out = {}
        for name, h in self.hemis.items():
            inside = (ids >= h.offset) & (ids < h.offset + h.n_vertices)
            out[name] = ids[inside] - h.offset
        return out

    def locate(self, global_id: int) -> tuple[str, int]:
        """The hemisphere and local id of a global vertex id."""
        for name, h in self.hemis.items():
            if h.offset <= global_id < h.offset + h.n_vertices:
                return name, int(global_id - h.offset)
        raise IndexError(f"vertex {global_id} is outside 0..{self.n_vertices - 1}")

    def voxels_to_vertices(self, values) -> np.ndarray:
        """Per-vertex values (n_vertices,) float32: the weighted average of each vertex's voxels, NaN where none."""
        values = np.asarray(values, dtype=np.float32).ravel()
        if values.shape != (self.n_voxels,):
            raise UserError(f"expected {self.n_voxels} voxel values, got {values.shape[0]}")
        out = (self.vertex_voxel @ values).astype(np.float32)
        out[self._row_weight == 0] = np.nan
        return out

    def vertices_to_voxels(self, vertex_ids) -> np.ndarray:
        """Sorted unique voxels that any of the given global vertices maps to (the voxels a brush reaches)."""
        ids = np.asarray(vertex_ids, dtype=np.int64).ravel()
        if ids.size == 0:
            return np.zeros(0, dtype=np.int64)
        m = self.vertex_voxel
        starts, stops = m.indptr[ids], m.indptr[ids + 1]
        counts = stops - starts
        if counts.sum() == 0:
            return np.zeros(0, dtype=np.int64)
        # gather the column indices of all rows at once, without a Python loop over rows
        positions = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        return np.unique(m.indices[positions].astype(np.int64))

    def voxel_mask(self, voxels) -> np.ndarray:
        """Boolean (n_voxels,) mask of a voxel id list; ids must be in range."""
        voxels = np.asarray(voxels, dtype=np.int64).ravel()
        if voxels.size and (voxels.min() < 0 or voxels.max() >= self.n_voxels):
            raise UserError(f"voxel ids must lie in 0..{self.n_voxels - 1}")
        mask = np.zeros(self.n_voxels, dtype=bool)
        mask[voxels] = True
        return mask

    def roi_weight(self, voxels) -> np.ndarray:
        """Per global vertex, the share of its weight that falls on ``voxels`` (0..1)."""
        return self.vertex_voxel @ self.voxel_mask(voxels).astype(np.float32)

    def roi_vertex_mask(self, voxels, min_weight: float = 0.5) -> np.ndarray:
        """Global vertices that take at least ``min_weight`` of their value from ``voxels`` (bool, n_vertices)."""
        return self.roi_weight(voxels) >= min_weight

    def roi_outline(self, voxels, min_weight: float = 0.5) -> np.ndarray:
        """Global vertices on the boundary of an ROI's vertex set (bool, n_vertices, read-only; cached per
        voxel set), for drawing outlines."""
        key = (np.unique(np.asarray(voxels, dtype=np.int64)).tobytes(), float(min_weight))
        if key not in self._outlines:
            outline = self.boundary(self.roi_vertex_mask(voxels, min_weight))
            outline.setflags(write=False)
            self._outlines[key] = outline
        return self._outlines[key]

    def boundary(self, mask: np.ndarray) -> np.ndarray:
        """Global vertices of ``mask`` (bool, n_vertices) with a neighbour outside it, hemisphere by hemisphere."""
        return np.concatenate([h.boundary(mask[self.hemi_slice(name)]) for name, h in self.hemis.items()])

    def selection_fill(self, voxels, painted_vertices=()) -> np.ndarray:
        """What the selection layer draws at each global vertex (uint8 ``FILL_*`` codes): the voxels' vertices,
        their edge (drawn opaque, so the region reads at any opacity and over any overlay), and painted
        vertices that map to no voxel: they add nothing to the pattern, and are drawn apart so the brush
        still shows where it went and why it did not count."""
        inside = self.roi_vertex_mask(voxels)
        fill = inside.astype(np.uint8) * FILL_INSIDE
        fill[self.boundary(inside)] = FILL_EDGE
        fill[self.without_voxel(painted_vertices)] = FILL_NO_VOXEL
        return fill

    def without_voxel(self, vertices) -> np.ndarray:
        """Those of ``vertices`` (global ids) that map to no voxel: painting them adds nothing to a pattern."""
        vertices = np.asarray(vertices, dtype=np.int64).ravel()
        return vertices[self.main_voxel[vertices] < 0]

    def brush_vertices(self, hemi: str, center_vertex: int, radius_mm: float, surface: str = "inflated") -> np.ndarray:
        """Global ids of the vertices within a geodesic ``radius_mm`` of a local ``center_vertex`` on ``hemi``."""
        local, _ = self.hemis[hemi].geodesic_ball(int(center_vertex), float(radius_mm), surface)
        return local + self.hemis[hemi].offset
