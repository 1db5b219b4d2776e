"""Save and load painted ROIs: brainview's JSON, FreeSurfer ``.label`` and GIFTI ``.label.gii``.

The JSON file is the faithful one: it holds the selected voxels (what a synthetic pattern uses)
and the painted vertices. The FreeSurfer and GIFTI exports are per hemisphere and hold the
selection's vertex footprint (``Cortex.roi_vertex_mask`` of the selected voxels), so FreeSurfer
or nibabel users can open them on the bundle's surface; importing one selects the voxels its
vertices map to. Every file is written atomically: a temporary file in the same folder, then
``os.replace``, so a crash never leaves half a file behind.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainview.cortex.selection import RoiSelection
from brainview.cortex.surface import HEMISPHERES, Cortex
from brainview.errors import UserError

ROI_FORMAT = "brainview-roi"
ROI_VERSION = 1
GIFTI_STRUCTURE = {"lh": "CortexLeft", "rh": "CortexRight"}
SELECTED_LABEL = "brainview ROI"


@dataclass(frozen=True)
class Roi:
    """A loaded ROI: selected voxels, painted vertices (local ids per hemisphere), source bundle name."""

    voxels: np.ndarray
    vertices: dict[str, np.ndarray] = field(default_factory=dict)
    bundle: str | None = None

    def apply_to(self, selection: RoiSelection) -> None:
        """Make ``selection`` this ROI (one undo step)."""
        cortex = selection.cortex
        painted = np.concatenate([cortex.to_global(h, ids) for h, ids in self.vertices.items()] or [np.zeros(0)])
        selection.replace(self.voxels, painted)


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    try:
        handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except OSError as exc:
        Path(handle.name).unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


# -- brainview JSON ------------------------------------------------------------------------------
def save_roi(path: str | Path, selection: RoiSelection, bundle_name: str) -> Path:
    """Save the selection's voxels and painted vertices as brainview ROI JSON."""
    cortex = selection.cortex
    painted = cortex.to_local(selection.painted_vertices())
    document = {"format": ROI_FORMAT, "version": ROI_VERSION, "bundle": bundle_name, "n_voxels": cortex.n_voxels,
                "voxels": selection.voxels().tolist(), "vertices": {h: painted[h].tolist() for h in HEMISPHERES}}
    return write_atomic(path, (json.dumps(document, indent=1) + "\n").encode("utf-8"))


def load_roi(path: str | Path, cortex: Cortex) -> Roi:
    """Read and validate brainview ROI JSON against ``cortex``; any problem is a :class:`UserError`."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"no ROI file at {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path.name} is not a readable ROI file ({exc})") from None

    def expect(condition: bool, problem: str) -> None:
        if not condition:
            raise UserError(f"{path.name}: {problem}")

    expect(isinstance(document, dict) and document.get("format") == ROI_FORMAT,
           f'not a brainview ROI file (expected "format": "{ROI_FORMAT}")')
    expect(document.get("version") == ROI_VERSION,
           f"unknown version {document.get('version')!r}; this brainview reads version {ROI_VERSION}")
    n_voxels = document.get("n_voxels")
    expect(n_voxels == cortex.n_voxels,
           f"was made for a bundle with {n_voxels} voxels, but this bundle has {cortex.n_voxels}")
    voxels = _integer_ids(document.get("voxels"), cortex.n_voxels, "voxels", expect)
    raw_vertices = document.get("vertices", {})
    expect(isinstance(raw_vertices, dict) and set(raw_vertices) <= set(HEMISPHERES),
           f'"vertices" must be an object with keys {list(HEMISPHERES)}')
    vertices = {h: _integer_ids(raw_vertices.get(h, []), cortex.hemis[h].n_vertices, f"{h} vertices", expect)
                for h in HEMISPHERES}
    bundle = document.get("bundle")
    return Roi(voxels, vertices, bundle if isinstance(bundle, str) else None)


def _integer_ids(raw, upper: int, what: str, expect) -> np.ndarray:
    expect(isinstance(raw, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in raw),
           f'"{what}" must be a list of integers')
    ids = np.unique(np.asarray(raw, dtype=np.int64))
    expect(ids.size == 0 or (ids[0] >= 0 and ids[-1] < upper), f'"{what}" has ids outside 0..{upper - 1}')
    return ids


# -- FreeSurfer / GIFTI --------------------------------------------------------------------------
def selection_vertices(selection: RoiSelection, hemi: str) -> np.ndarray:
    """Local ids of ``hemi``'s vertices covered by the selection (painted vertices always included)."""
    cortex = selection.cortex
    mask = cortex.roi_vertex_mask(selection.voxels())
    mask[selection.painted_vertices()] = True
    return np.flatnonzero(mask[cortex.hemi_slice(hemi)])


def export_label(path: str | Path, selection: RoiSelection, hemi: str, surface: str = "pial") -> Path:
    """Write a FreeSurfer ASCII ``.label`` of the selection on ``hemi`` (coordinates from ``surface``)."""
    vertices = selection_vertices(selection, hemi)
    xyz = selection.cortex.hemis[hemi].coords(surface)[vertices]
    lines = [f"#!ascii label , from brainview ({hemi}, {surface} coordinates)", str(len(vertices))]
    lines += [f"{v} {x:.3f} {y:.3f} {z:.3f} 1.000000" for v, (x, y, z) in zip(vertices, xyz)]
    return write_atomic(path, ("\n".join(lines) + "\n").encode("ascii"))


def export_gifti_label(path: str | Path, selection: RoiSelection, hemi: str) -> Path:
    """Write a GIFTI label file (``.label.gii``): 1 on the selection's vertices of ``hemi``, 0 elsewhere."""
    import nibabel as nib

    hemisphere = selection.cortex.hemis[hemi]
    labels = np.zeros(hemisphere.n_vertices, dtype=np.int32)
    labels[selection_vertices(selection, hemi)] = 1
    table = nib.gifti.GiftiLabelTable()
    for key, name, rgba in ((0, "???", (0.0, 0.0, 0.0, 0.0)), (1, SELECTED_LABEL, (1.0, 0.8, 0.0, 1.0))):
        label = nib.gifti.GiftiLabel(key, *rgba)
        label.label = name
        table.labels.append(label)
    array = nib.gifti.GiftiDataArray(labels, intent="NIFTI_INTENT_LABEL", datatype="NIFTI_TYPE_INT32")
    image = nib.gifti.GiftiImage(labeltable=table, darrays=[array],
                                 meta=nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary": GIFTI_STRUCTURE[hemi]}))
    return write_atomic(path, image.to_xml())


def import_surface_roi(path: str | Path, cortex: Cortex, hemi: str | None = None) -> Roi:
    """Read a FreeSurfer ``.label`` or GIFTI ``.label.gii``/``.shape.gii``/``.func.gii`` onto ``cortex``.

    The hemisphere comes from ``hemi``, else the GIFTI's AnatomicalStructurePrimary, else an
    ``lh``/``rh`` token in the file name. Non-zero GIFTI values count as selected.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise UserError(f"no ROI file at {path}")
    if hemi is not None and hemi not in HEMISPHERES:
        raise UserError(f"hemisphere must be one of {list(HEMISPHERES)}, got {hemi!r}")
    try:
        if path.name.endswith(".label"):
            vertices = _read_freesurfer_label(path)
            hemi = hemi or _hemi_from_name(path)
        elif path.name.endswith(".gii"):
            image = nib.load(str(path))
            if not image.darrays:
                raise UserError(f"{path.name} holds no data array")
            values = np.asarray(image.darrays[0].data).ravel()
            structure = image.meta.get("AnatomicalStructurePrimary") if image.meta is not None else None
            hemi = hemi or {v: k for k, v in GIFTI_STRUCTURE.items()}.get(structure) or _hemi_from_name(path)
            expected = cortex.hemis[hemi].n_vertices
            if values.shape[0] != expected:
                raise UserError(f"{path.name} has {values.shape[0]} values but {hemi} has {expected} vertices")
            vertices = np.flatnonzero(values)
        else:
            raise UserError(f"{path.name}: expected a FreeSurfer .label or a GIFTI .gii file")
    except UserError:
        raise
    except Exception as exc:  # nibabel raises many types for a malformed file
        raise UserError(f"{path.name} is not a readable label file ({exc})") from None
    n = cortex.hemis[hemi].n_vertices
    if vertices.size and (vertices.min() < 0 or vertices.max() >= n):
        raise UserError(f"{path.name} refers to vertices outside 0..{n - 1} of {hemi}")
    vertices = np.unique(vertices)
    voxels = cortex.vertices_to_voxels(cortex.to_global(hemi, vertices))
    return Roi(voxels, {hemi: vertices})


def _read_freesurfer_label(path: Path) -> np.ndarray:
    """Vertices of an ASCII label, checked against the count on its second line (nibabel does not check)."""
    import nibabel as nib

    with open(path, encoding="ascii") as handle:
        handle.readline()
        count = int(handle.readline().split()[0])
    with warnings.catch_warnings():  # an empty label is valid; numpy warns about it
        warnings.simplefilter("ignore", UserWarning)
        vertices = np.asarray(nib.freesurfer.io.read_label(str(path)), dtype=np.int64).ravel()
    if vertices.size != count:
        raise UserError(f"{path.name} announces {count} vertices but lists {vertices.size}")
    return vertices


def _hemi_from_name(path: Path) -> str:
    found = {h for h in HEMISPHERES if re.search(rf"(^|[._\-]){h}([._\-]|$)", path.name)}
    if len(found) != 1:
        raise UserError(f"cannot tell the hemisphere of {path.name}: name it lh.* or rh.*, or choose the hemisphere")
    return found.pop()
