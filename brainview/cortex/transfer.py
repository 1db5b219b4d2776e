"""Carry a selection from one subject to another through the cortical surface (Qt-free).

Subjects' voxels do not correspond, their surfaces do: a painted region is moved as the vertices it
covers, through a surface both subjects are registered to, and becomes the target subject's voxels
under those vertices. Atlas ROIs are carried by name (each subject keeps its own definition of FFA).

Common surfaces:

- the same mesh (the demo's subjects all live on fsaverage5): vertex i is vertex i;
- fsaverage, through an optional ``cortex/fsaverage.npz`` in each bundle with ``lh`` and ``rh``:
  for every fsaverage vertex the index of the subject's native vertex associated with it (0-based,
  -1 for none): NSD's ``{lh,rh}.white-to-fsaverage.mgz`` (1-based there), which the NSD export writes.
  A region goes native A → fsaverage (the fsaverage vertices whose A-vertex is in it) → native B
  (the B-vertices of those fsaverage vertices): nearest-neighbour, as ``nsd_mapdata`` maps surfaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainview.cortex.surface import Cortex
from brainview.errors import UserError

FSAVERAGE_FILE = "cortex/fsaverage.npz"
HEMIS = ("lh", "rh")
MAX_FSAVERAGE_VERTICES = 163842  # fsaverage (ico7) per hemisphere


@dataclass(frozen=True)
class SurfaceSpace:
    """How one subject reaches a surface shared with others: ``kind`` "mesh" (vertices are shared as
    they are; ``key`` identifies the mesh) or "fsaverage" (``to_native[hemi]``: fsaverage vertex →
    native vertex or -1)."""

    kind: str
    key: tuple = ()
    to_native: dict | None = None


def read_fsaverage_map(bundle_path: str | Path, n_vertices: dict[str, int]) -> dict[str, np.ndarray] | None:
    """The bundle's ``cortex/fsaverage.npz`` (None when it has none), checked against its hemispheres."""
    from brainview.bundle.files import BundleError, BundleFiles

    root = Path(bundle_path)
    if not (root / FSAVERAGE_FILE).exists():
        return None
    files = BundleFiles(root)
    out = {}
    with files.npz(FSAVERAGE_FILE) as npz:
        for hemi in HEMIS:
            index = np.asarray(npz.read(hemi, (None,), "iu", {0: MAX_FSAVERAGE_VERTICES}), dtype=np.int64)
            if index.size and (index.min() < -1 or index.max() >= n_vertices[hemi]):
                raise BundleError(FSAVERAGE_FILE, f'"{hemi}" holds vertex indices outside -1..{n_vertices[hemi] - 1}')
            out[hemi] = index
    if out["lh"].size == 0 or out["rh"].size == 0:
        raise BundleError(FSAVERAGE_FILE, "holds an empty hemisphere")
    return out


def space_of(bundle) -> SurfaceSpace:
    """The common surface of a bundle: fsaverage when it ships the mapping, else its own mesh."""
    n_vertices = {h: int(bundle.mesh[h]["pial"].shape[0]) for h in HEMIS}
    mapping = read_fsaverage_map(bundle.path, n_vertices)
    if mapping is not None:
        return SurfaceSpace("fsaverage", (len(mapping["lh"]), len(mapping["rh"])), mapping)
    return SurfaceSpace("mesh", _mesh_key(bundle.mesh))


def _mesh_key(mesh) -> tuple:
    """Identifies a mesh by its vertex counts and a hash of its pial coordinates and faces."""
    import hashlib

    digest = hashlib.sha256()
    for hemi in HEMIS:
        for key in ("pial", "faces"):
            digest.update(np.ascontiguousarray(mesh[hemi][key]).tobytes())
    return tuple(int(mesh[h]["pial"].shape[0]) for h in HEMIS) + (digest.hexdigest(),)


def can_transfer(source: SurfaceSpace, target: SurfaceSpace) -> str | None:
    """None when a region can go from ``source`` to ``target``; else why not."""
    if source.kind == target.kind == "mesh" and source.key == target.key:
        return None
    if source.kind == target.kind == "fsaverage" and source.key == target.key:
        return None
    if source.kind != target.kind:
        return ("one subject is registered to fsaverage and the other is not: add cortex/fsaverage.npz "
                "(the NSD export writes it) to both")
    return "the two subjects' surfaces differ and neither is registered to a common one"


def transfer_vertices(vertices: np.ndarray, source_cortex: Cortex, source: SurfaceSpace,
                      target_cortex: Cortex, target: SurfaceSpace) -> np.ndarray:
    """Global vertex ids of ``target_cortex`` covered by the source's global ``vertices``."""
    why = can_transfer(source, target)
    if why is not None:
        raise UserError(f"cannot carry the selection over: {why}")
    vertices = np.asarray(vertices, dtype=np.int64)
    if source.kind == "mesh":
        return np.unique(vertices)
    out = []
    local = source_cortex.to_local(vertices)
    for hemi in HEMIS:
        chosen = np.zeros(source_cortex.hemis[hemi].n_vertices, dtype=bool)
        chosen[local[hemi]] = True
        src, dst = source.to_native[hemi], target.to_native[hemi]
        on_common = (src >= 0) & (dst >= 0)
        on_common[on_common] = chosen[src[on_common]]
        out.append(target_cortex.to_global(hemi, np.unique(dst[on_common])))
    return np.unique(np.concatenate(out))


def footprint(cortex: Cortex, voxels: np.ndarray) -> np.ndarray:
    """Global ids of the vertices that map to any of ``voxels``."""
    voxels = np.asarray(voxels, dtype=np.int64)
    if voxels.size == 0:
        return voxels
    return np.flatnonzero(np.asarray(cortex.vertex_voxel[:, voxels].sum(axis=1)).ravel() > 0)


def voxels_under(cortex: Cortex, vertices: np.ndarray) -> np.ndarray:
    """The voxels the given global vertices map to (with any weight)."""
    vertices = np.asarray(vertices, dtype=np.int64)
    if vertices.size == 0:
        return vertices
    return np.unique(cortex.vertex_voxel[vertices].indices).astype(np.int64)


def transfer_edits(edits: dict, source_cortex: Cortex, source: SurfaceSpace, target_cortex: Cortex,
                   target: SurfaceSpace) -> dict:
    """A selection's :meth:`~brainview.cortex.selection.RoiSelection.edits` carried to the target subject:
    atlas ROIs by name (those the target has), painted and erased regions through the surface."""
    out = {"rois": [n for n in edits.get("rois", ()) if n in target_cortex.rois]}
    for kind in ("painted", "erased"):
        vertices = np.union1d(np.asarray(edits.get(f"{kind}_vertices", ()), dtype=np.int64),
                              footprint(source_cortex, edits.get(f"{kind}_voxels", ())))
        moved = transfer_vertices(vertices, source_cortex, source, target_cortex, target)
        out[f"{kind}_vertices"] = moved.tolist()
        out[f"{kind}_voxels"] = voxels_under(target_cortex, moved).tolist()
    return out
