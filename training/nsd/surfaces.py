"""The subject's native cortical surfaces and the vertex↔voxel map from NSD's layer transforms.

NSD's ``{lh,rh}.func1pt8-to-layerB{1,2,3}.mgz`` give, for every vertex of the subject's native
surface, the 1-based (x, y, z) position in the 1.8 mm functional volume at three cortical depths
(9999 where there is none). A vertex's row of ``vertex_voxel`` is the average over its depths:
each depth sample that falls (nearest voxel, as NSD's own ``nsd_mapdata`` with nearest
interpolation) in an nsdgeneral voxel gets an equal share, so a voxel hit at two depths weighs
twice a voxel hit at one, and the row sums to 1 (or 0 for a vertex with no nsdgeneral sample).

Every nsdgeneral voxel must be reachable from the surface, or the app could never select or
paint it. A voxel that no depth sample falls in is attached to the vertex nearest to it in
voxel space (the vertex's mean position over its valid depths), as one more sample of that
vertex; how many were attached, and how far, is reported.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from brainview.cortex.flatmap import flatmap, read_patch
from brainview.errors import UserError
from training.nsd.layout import HEMISPHERES, SURFACE_LAYERS, NsdLayout

INVALID = 9999
FLAT_PATCH = "full.flat.patch.3d"


def read_surfaces(layout: NsdLayout) -> dict[str, dict[str, np.ndarray]]:
    """``{hemi: {inflated, pial, faces, sulc}}`` from the subject's FreeSurfer ``surf/`` folder, plus
    ``flat`` and ``flat_faces`` when both hemispheres have a ``full.flat.patch.3d``."""
    from nibabel.freesurfer import read_geometry, read_morph_data

    mesh = {}
    for hemi in HEMISPHERES:
        paths = {kind: layout.surface(hemi, kind) for kind in ("inflated", "pial", "sulc")}
        layout.require(*paths.values())
        inflated, faces = read_geometry(str(paths["inflated"]))
        pial, pial_faces = read_geometry(str(paths["pial"]))
        sulc = read_morph_data(str(paths["sulc"]))
        if pial.shape != inflated.shape or not np.array_equal(faces, pial_faces) or sulc.shape != (len(inflated),):
            raise UserError(f"{hemi} surfaces in {paths['pial'].parent} do not share their vertices and faces")
        mesh[hemi] = {"inflated": inflated.astype(np.float32), "pial": pial.astype(np.float32),
                      "faces": faces.astype(np.int32), "sulc": sulc.astype(np.float32)}
    patches = {hemi: layout.surface(hemi, FLAT_PATCH) for hemi in HEMISPHERES}
    if all(path.is_file() for path in patches.values()):  # a flatmap for both hemispheres or none
        for hemi, path in patches.items():
            mesh[hemi].update(flatmap(*read_patch(path), mesh[hemi]["faces"], len(mesh[hemi]["inflated"])))
    return mesh


def read_layer_coords(layout: NsdLayout, hemi: str, n_vertices: int) -> np.ndarray:
    """(layers, vertices, 3) 1-based functional-voxel coordinates; NaN where NSD wrote 9999."""
    import nibabel as nib

    layers = []
    for layer in SURFACE_LAYERS:
        path = layout.layer_transform(hemi, layer)
        layout.require(path)
        coords = np.asarray(nib.load(path).get_fdata(), dtype=np.float64).reshape(-1, 3)
        if len(coords) != n_vertices:
            raise UserError(f"{path} has {len(coords)} vertices but the {hemi} surface has {n_vertices}")
        coords[(coords >= INVALID - 0.5).any(axis=1) | ~np.isfinite(coords).all(axis=1)] = np.nan
        layers.append(coords)
    return np.stack(layers)


def vertex_voxel_map(layout: NsdLayout, mask: np.ndarray,
                     mesh: dict[str, dict[str, np.ndarray]]) -> tuple[sp.csr_matrix, dict]:
    """CSR (n_vertices_lh + n_vertices_rh, n_voxels) with rows summing to 1 or 0, and a report."""
    from scipy.spatial import cKDTree

    voxel_of = np.full(mask.shape, -1, dtype=np.int64)
    voxel_of[mask] = np.arange(int(mask.sum()))  # the voxel order of volume[mask]
    n_voxels = int(mask.sum())
    rows, cols, positions, offset = [], [], [], 0
    for hemi in HEMISPHERES:
        n = len(mesh[hemi]["inflated"])
        coords = read_layer_coords(layout, hemi, n)  # (layers, n, 3), 1-based
        valid = ~np.isnan(coords).any(axis=2)
        ijk = np.where(valid[..., None], np.rint(np.nan_to_num(coords)) - 1, -1).astype(np.int64)
        inside = valid & (ijk >= 0).all(axis=2) & (ijk < mask.shape).all(axis=2)
        voxel = np.full(valid.shape, -1, dtype=np.int64)
        voxel[inside] = voxel_of[tuple(ijk[inside].T)]
        layer_idx, vertex = np.nonzero(voxel >= 0)
        rows.append(vertex + offset)
        cols.append(voxel[layer_idx, vertex])
        n_valid = valid.sum(axis=0)[:, None]
        mean = np.where(valid[..., None], coords - 1, 0.0).sum(axis=0) / np.maximum(n_valid, 1)
        positions.append(np.where(n_valid > 0, mean, np.nan))  # (n, 3) 0-based, NaN without a valid depth
        offset += n
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    positions = np.concatenate(positions)
    reached = np.zeros(n_voxels, dtype=bool)
    reached[cols] = True
    unreached = np.flatnonzero(~reached)
    report = {"n_vertices": int(offset), "n_voxels": n_voxels, "unreached_voxels_attached": int(len(unreached)),
              "max_attach_distance_voxels": 0.0}
    if len(unreached):
        located = np.flatnonzero(~np.isnan(positions).any(axis=1))
        if not len(located):
            raise UserError("no surface vertex has a valid position in the functional volume")
        distance, nearest = cKDTree(positions[located]).query(np.argwhere(mask)[unreached])
        rows = np.concatenate([rows, located[nearest]])
        cols = np.concatenate([cols, unreached])
        report["max_attach_distance_voxels"] = float(distance.max())
    samples = np.bincount(rows, minlength=offset).astype(np.float64)
    matrix = sp.coo_matrix((1.0 / samples[rows], (rows, cols)), shape=(offset, n_voxels)).tocsr()  # sums duplicates
    matrix.sum_duplicates()
    report["vertices_mapped"] = int((np.diff(matrix.indptr) > 0).sum())
    return matrix.astype(np.float32), report
