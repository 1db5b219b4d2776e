"""Save and load painted ROIs: brainview's JSON, FreeSurfer ``.label`` and GIFTI ``.label.gii``.

The JSON file is the faithful one: it holds the selected voxels (what a synthetic pattern uses)
and the painted vertices. The FreeSurfer and GIFTI exports are per hemisphere and hold the
selection's vertex footprint (``Cortex.roi_vertex_mask`` of the selected voxels), so FreeSurfer
or nibabel users can open them on the bundle's surface; importing one selects the voxels its
vertices map to. Every file is written atomically: a temporary file in the same folder, synced,
then ``os.replace`` and a sync of the folder, so a crash never leaves half a file behind; an
lh/rh pair is written as a group (both synced before either replaces its target). A file to read
is untrusted: sizes are bounded before anything is decoded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainview.bundle.user_files import UserFileError, parse_json, read_regular
from brainview.cortex.selection import RoiSelection
from brainview.cortex.surface import HEMISPHERES, Cortex
from brainview.errors import UserError

ROI_FORMAT = "brainview-roi"
ROI_VERSION = 1
GIFTI_STRUCTURE = {"lh": "CortexLeft", "rh": "CortexRight"}
SELECTED_LABEL = "brainview ROI"
MAX_ROI_FILE = 256 * 2**20  # bytes; an ROI of every vertex of two 2-million-vertex hemispheres fits


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
    """Write ``data`` to ``path`` atomically (see :func:`write_atomic_group`)."""
    return write_atomic_group({Path(path): data})[0]


def write_atomic_group(files: dict[Path, bytes]) -> list[Path]:
    """Write each ``path -> data`` through a synced temporary file in the same folder, then replace the
    targets one right after the other and sync their folders.

    Every temporary file is complete on disk before the first target changes, so an error (a full
    disk, Ctrl+C) changes nothing and leaves no temporary file; only a kill between the renames of
    a group can leave one old and one new file. A symlinked target keeps its link: the file it points
    to is replaced. A new file gets the usual permissions (0666 less the umask), an existing one
    keeps its own.
    """
    targets = [(Path(path), Path(os.path.realpath(path)), data) for path, data in files.items()]
    temps: list[str] = []
    try:
        for _, real, data in targets:
            mode = _mode_for(real)
            fd, temp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
            temps.append(temp)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fchmod(handle.fileno(), mode)
                os.fsync(handle.fileno())
        for (_, real, _), temp in zip(targets, temps):
            os.replace(temp, real)
        for folder in {real.parent for _, real, _ in targets}:
            _fsync_folder(folder)
    except BaseException as exc:
        for temp in temps:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        if isinstance(exc, OSError):
            others = "" if len(targets) == 1 else f" and {len(targets) - 1} other files"
            raise UserError(f"cannot write {targets[0][0]}{others}: {exc.strerror or exc}") from None
        raise
    return [path for path, _, _ in targets]


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_folder(folder: Path) -> None:
    """Make the renames durable (POSIX); folders cannot be opened this way on Windows."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read_bounded(path: Path) -> bytes:
    """The bytes of a file to import, refused before reading when it is larger than any ROI can be
    (or a FIFO, a device, a folder)."""
    try:
        return read_regular(path, MAX_ROI_FILE, path.name)
    except UserFileError as exc:
        if not path.exists():
            raise UserError(f"no ROI file at {path}") from None
        raise UserError(str(exc)) from None


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
    raw = _read_bounded(path)
    try:
        document = parse_json(raw.decode("utf-8"), path.name)  # bounded depth and integers
    except UserFileError as exc:
        raise UserError(f"{path.name} is not a readable ROI file ({exc.problem})") from None
    except UnicodeDecodeError as exc:
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
    expect(all(0 <= i < upper for i in raw), f'"{what}" has ids outside 0..{upper - 1}')  # before any int64 cast
    return np.unique(np.asarray(raw, dtype=np.int64))


# -- FreeSurfer / GIFTI --------------------------------------------------------------------------
def selection_vertices(selection: RoiSelection, hemi: str) -> np.ndarray:
    """Local ids of ``hemi``'s vertices covered by the selection (painted vertices always included)."""
    cortex = selection.cortex
    mask = cortex.roi_vertex_mask(selection.voxels())
    mask[selection.painted_vertices()] = True
    return np.flatnonzero(mask[cortex.hemi_slice(hemi)])


def export_label(path: str | Path, selection: RoiSelection, hemi: str, surface: str = "pial") -> Path:
    """Write a FreeSurfer ASCII ``.label`` of the selection on ``hemi`` (coordinates from ``surface``)."""
    return write_atomic(path, _label_bytes(selection, hemi, surface))


def export_gifti_label(path: str | Path, selection: RoiSelection, hemi: str) -> Path:
    """Write a GIFTI label file (``.label.gii``): 1 on the selection's vertices of ``hemi``, 0 elsewhere."""
    return write_atomic(path, _gifti_bytes(selection, hemi))


def export_surface_pair(path: str | Path, selection: RoiSelection) -> list[Path]:
    """Write ``lh.NAME`` and ``rh.NAME`` next to ``path`` (NAME ending in ``.label`` or ``.label.gii``) as a group."""
    path = Path(path)
    encode = _label_bytes if path.name.endswith(".label") else _gifti_bytes
    return write_atomic_group({path.with_name(f"{hemi}.{path.name}"): encode(selection, hemi) for hemi in HEMISPHERES})


def _label_bytes(selection: RoiSelection, hemi: str, surface: str = "pial") -> bytes:
    vertices = selection_vertices(selection, hemi)
    xyz = selection.cortex.hemis[hemi].coords(surface)[vertices]
    lines = [f"#!ascii label , from brainview ({hemi}, {surface} coordinates)", str(len(vertices))]
    lines += [f"{v} {x:.3f} {y:.3f} {z:.3f} 1.000000" for v, (x, y, z) in zip(vertices, xyz)]
    return ("\n".join(lines) + "\n").encode("ascii")


def _gifti_bytes(selection: RoiSelection, hemi: str) -> bytes:
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
    return image.to_xml()


def import_surface_roi(path: str | Path, cortex: Cortex, hemi: str | None = None) -> Roi:
    """Read a FreeSurfer ``.label`` or GIFTI ``.label.gii``/``.shape.gii``/``.func.gii`` onto ``cortex``.

    The hemisphere comes from ``hemi``, else the GIFTI's AnatomicalStructurePrimary, else an
    ``lh``/``rh`` token in the file name. Non-zero GIFTI values count as selected.
    """
    import nibabel as nib

    path = Path(path)
    _read_bounded(path)  # exists, and is not larger than any ROI file
    if hemi is not None and hemi not in HEMISPHERES:
        raise UserError(f"hemisphere must be one of {list(HEMISPHERES)}, got {hemi!r}")
    try:
        if path.name.endswith(".label"):
            vertices = _read_freesurfer_label(path)
            hemi = hemi or _hemi_from_name(path)
        elif path.name.endswith(".gii"):
            image = _load_gifti(path, max(h.n_vertices for h in cortex.hemis.values()))
            if not image.darrays:
                raise UserError(f"{path.name} holds no data array")
            values = np.asarray(image.darrays[0].data).ravel()
            if values.dtype.kind not in "biuf" or not np.isfinite(values).all():
                raise UserError(f"{path.name} holds values that are not finite numbers (NaN would select everything)")
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


def _load_gifti(path: Path, max_values: int):
    """A GIFTI image whose arrays were checked, before decoding, to be inline and no longer than a
    hemisphere: data in another file would read any local file, and a compressed array could expand to
    gigabytes."""
    import nibabel as nib

    text = _read_bounded(path).decode("utf-8", "replace")
    if re.search(r'Encoding\s*=\s*"ExternalFileBinary"', text):
        raise UserError(f"{path.name} keeps its data in another file (ExternalFileBinary); brainview reads "
                        "inline GIFTI only")
    for array in re.finditer(r"<DataArray\b[^>]*>", text):
        dims = [int(d) for d in re.findall(r'Dim\d\s*=\s*"(\d{1,18})"', array.group())]
        if not dims or np.prod(dims, dtype=np.float64) > max_values:
            raise UserError(f"{path.name} announces an array of {dims or 'unknown'} values; a hemisphere of "
                            f"this bundle has at most {max_values}")
    return nib.load(str(path))


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
