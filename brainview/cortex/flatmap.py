"""Flatmaps from FreeSurfer flat patches (``?h.full.flat.patch.3d``), as pycortex builds them.

A patch file lists the vertices it keeps with their flattened position; the flatmap draws the faces
of the full mesh whose three corners are all in the patch, so the cuts (and the medial wall, which
the patch leaves out) open up. Vertices outside the patch keep a position at the patch's centre but
no face refers to them: they are neither drawn nor picked (see ``Hemisphere.drawn_vertices``).

File format (big-endian): int32 ``-1`` (the current version), int32 number of points, then per
point int32 vertex number + 1 (negative for a vertex on the patch's border) and float32 x, y, z.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainview.errors import UserError

PATCH_DTYPE = np.dtype([("vertex", ">i4"), ("x", ">f4"), ("y", ">f4"), ("z", ">f4")])


def read_patch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(0-based vertex ids, (n, 3) float32 flat coordinates) of a FreeSurfer patch file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the flat patch {path}: {exc}") from None
    if len(raw) < 8:
        raise UserError(f"{path} is not a FreeSurfer patch file (too short)")
    version, count = np.frombuffer(raw[:8], dtype=">i4")
    if version != -1:
        raise UserError(f"{path} is not a FreeSurfer patch file of the current version (header {version})")
    body = raw[8:]
    if count < 0 or len(body) != count * PATCH_DTYPE.itemsize:
        raise UserError(f"{path} announces {count} points but holds {len(body) / PATCH_DTYPE.itemsize:g}")
    points = np.frombuffer(body, dtype=PATCH_DTYPE)
    vertices = np.abs(points["vertex"].astype(np.int64)) - 1
    coords = np.stack([points["x"], points["y"], points["z"]], axis=1).astype(np.float32)
    return vertices, coords


def flatmap(vertices: np.ndarray, coords: np.ndarray, faces: np.ndarray, n_vertices: int) -> dict[str, np.ndarray]:
    """``{"flat": (n_vertices, 3), "flat_faces": (F', 3)}`` for a bundle's mesh from a patch's points."""
    vertices = np.asarray(vertices, dtype=np.int64)
    if vertices.size == 0 or vertices.min() < 0 or vertices.max() >= n_vertices:
        raise UserError(f"the flat patch's vertex ids must lie in 0..{n_vertices - 1}")
    inside = np.zeros(n_vertices, dtype=bool)
    inside[vertices] = True
    flat = np.empty((n_vertices, 3), dtype=np.float32)
    flat[:] = coords.mean(axis=0)
    flat[vertices] = coords
    kept = np.asarray(faces)[inside[faces].all(axis=1)]
    if len(kept) == 0:
        raise UserError("the flat patch keeps no face of the surface")
    return {"flat": flat, "flat_faces": kept.astype(np.int32)}
