"""Open and validate a decoding bundle (DESIGN.md §3).

Opening is all-or-nothing: every file is checked against the manifest and each other, and the
first problem raises :class:`BundleError` naming the file and what is wrong. Large arrays are
memory-mapped. Nothing is ever unpickled: a bundle is data, opening one runs no code from it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from brainview.bundle import format as F
from brainview.bundle.files import BundleError, BundleFiles, inside, walk_inside
from brainview.bundle.questions import check_question_settings, check_questions
from brainview.bundle.repeats import read_repeats

#: a Hugging Face model id: "name" or "owner/name"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


@dataclass
class Bundle:
    """A validated bundle. Arrays from ``.npy`` files are read-only memory maps."""

    path: Path
    manifest: dict[str, Any]
    weights: dict[str, np.ndarray]
    fmri: np.ndarray
    stimuli: np.ndarray
    captions: list[list[str]]
    trials: list[dict[str, Any]]
    image_embeddings: np.ndarray
    text_embeddings: np.ndarray
    text_index: np.ndarray
    mesh: dict[str, dict[str, np.ndarray]]
    vertex_voxel: sp.csr_matrix
    rois: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # optional files (format.OPTIONAL_JSON) that are present
    questions: list[list[dict[str, Any]]] | None = None  # the optional QA set, per trial
    #: the prediction cache (format version 2): stage -> every trial's predicted tokens, memory-mapped;
    #: checked for shape, dtype and finite values here, against the weights when a session opens it
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    #: why the cache the manifest announces cannot be read (missing or damaged files), or None
    predictions_problem: str | None = None
    #: the optional single trials: every repeat (n_trials, max_repeats, n_voxels), memory-mapped, and the
    #: number of valid repeats per trial (slots past it are not data); None when the bundle has only the mean
    fmri_repeats: np.ndarray | None = None
    repeat_counts: np.ndarray | None = None

    @property
    def max_repeats(self) -> int:
        """Repeat slots per trial (0: the bundle has only each image's mean pattern)."""
        return 0 if self.fmri_repeats is None else int(self.fmri_repeats.shape[1])

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def n_trials(self) -> int:
        return int(self.fmri.shape[0])

    @property
    def n_voxels(self) -> int:
        return int(self.manifest["n_voxels"])

    @property
    def n_query(self) -> int:
        return int(self.manifest["n_query"])

    @property
    def query_dim(self) -> int:
        return int(self.manifest["query_dim"])

    @property
    def text_dim(self) -> int:
        return int(self.manifest["text_dim"])

    @property
    def stages(self) -> list[str]:
        return list(self.manifest["stages"])

    @property
    def vlm(self) -> dict[str, Any]:
        return {**F.VLM_DEFAULTS, **self.manifest.get("vlm", {})}

    @property
    def synthetic_scale(self) -> float:
        return float({**F.SYNTHETIC_DEFAULTS, **self.manifest.get("synthetic", {})}["scale"])

    @property
    def n_vertices(self) -> dict[str, int]:
        return {h: int(self.mesh[h]["inflated"].shape[0]) for h in F.HEMISPHERES}

    def roi_voxels(self, name: str) -> np.ndarray:
        return self.rois[name]["voxels"]

    def resolve_model(self, reference: str | None) -> str | None:
        """A model reference from the manifest: the absolute folder inside the bundle, else the Hugging
        Face model id (to be looked up in the local cache only). Never a path outside the bundle."""
        if not reference:
            return None
        local = self.path / reference
        if local.exists() or local.is_symlink():
            check_model_folder(self.path, reference)
            return str(local.resolve())
        if not _HUB_ID.fullmatch(reference):
            raise BundleError(F.MANIFEST, f"the model folder {reference!r} is missing from the bundle")
        return reference


def open_bundle(path: str | Path) -> Bundle:
    """Open and validate the bundle at ``path``; raise :class:`BundleError` on any problem.

    Every size is checked against the manifest (and the bounds in :mod:`~brainview.bundle.format`)
    from file headers before any data is read.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise BundleError(None, f"no bundle at {root}: the path does not exist")
    if not root.is_dir():
        raise BundleError(None, f"{root} is not a bundle: a bundle is a directory with {F.MANIFEST}")
    root = root.absolute()
    files = BundleFiles(root)
    for rel in F.REQUIRED_FILES:
        files.path(rel)

    manifest = validate_manifest(files.json(F.MANIFEST, F.MAX_MANIFEST_BYTES))
    n_vox, n_q, q_dim, t_dim = (manifest[k] for k in ("n_voxels", "n_query", "query_dim", "text_dim"))
    for key in ("captioner", "retrieval"):
        reference = manifest["vlm"].get(key)
        if reference and (root / reference).exists():
            check_model_folder(root, reference)

    fmri = files.npy(F.FMRI, (None, n_vox), ("float32", "float16"), {0: F.MAX_TRIALS}, ("n_trials", "n_voxels"))
    n_trials = fmri.shape[0]
    _expect(n_trials > 0, F.FMRI, "has no trials")
    _check_finite(fmri, F.FMRI)

    stimuli = files.npy(F.STIMULI, (n_trials, None, None, 3), ("uint8",),
                        {1: F.MAX_STIMULUS_SIDE, 2: F.MAX_STIMULUS_SIDE}, ("n_trials", "height", "width", "RGB"))
    _expect(min(stimuli.shape[1:3]) > 0, F.STIMULI, f"holds empty images (shape {stimuli.shape})")

    per_trial = 1 << 20 | 64 * 1024 * n_trials  # bytes a JSON file with a few fields per trial may take
    captions = files.json(F.CAPTIONS, per_trial)
    _expect(isinstance(captions, list) and all(
        isinstance(c, list) and c and len(c) <= F.MAX_TEXTS_PER_TRIAL and all(isinstance(s, str) for s in c)
        for c in captions),
        F.CAPTIONS, "must be a list with, per trial, a non-empty list of caption strings")
    _expect(len(captions) == n_trials, F.CAPTIONS, f"has captions for {len(captions)} trials, expected {n_trials}")

    trials = files.json(F.TRIALS, per_trial)
    _expect(isinstance(trials, list) and all(isinstance(t, dict) and isinstance(t.get("id"), str) and t["id"]
                                             for t in trials),
            F.TRIALS, 'must be a list of objects, each with a non-empty string "id"')
    _expect(len(trials) == n_trials, F.TRIALS, f"describes {len(trials)} trials, expected {n_trials}")
    ids = [t["id"] for t in trials]
    _expect(len(set(ids)) == len(ids), F.TRIALS, "trial ids are not unique")

    image = files.npy(F.IMAGE_EMBEDDINGS, (n_trials, n_q, q_dim), ("float32",), None,
                      ("n_trials", "n_query", "query_dim"))
    _check_finite(image, F.IMAGE_EMBEDDINGS)

    n_captions = sum(len(c) for c in captions)
    text = files.npy(F.TEXT_EMBEDDINGS, (None, t_dim), ("float32",), {0: n_captions}, ("n_texts", "text_dim"))
    _expect(text.shape[0] > 0, F.TEXT_EMBEDDINGS, "has no rows: every trial needs its reference captions embedded")
    _check_finite(text, F.TEXT_EMBEDDINGS, unit_rows=True)

    text_index = _read_text_index(files, text.shape[0], captions)
    weights = _read_weights(files, manifest)
    mesh = _read_mesh(files)
    n_vertices = sum(mesh[h]["inflated"].shape[0] for h in F.HEMISPHERES)
    vertex_voxel = _read_vertex_voxel(files, n_vertices, n_vox)
    rois = _read_rois(files, n_vox)
    extra = {rel: files.json(rel, 1 << 20 | limit * n_trials) for rel, limit in F.OPTIONAL_JSON.items()
             if (root / rel).exists() or (root / rel).is_symlink()}
    questions = None
    if (root / F.QUESTIONS).exists() or (root / F.QUESTIONS).is_symlink():
        try:
            questions = check_questions(files.json(F.QUESTIONS, 1 << 20 | F.MAX_QUESTION_BYTES * n_trials), n_trials)
        except ValueError as exc:
            raise BundleError(F.QUESTIONS, str(exc)) from None

    predictions, cache_problem = _read_predictions(files, manifest, n_trials)
    repeats, counts = read_repeats(files, n_trials, n_vox) or (None, None)
    return Bundle(root, manifest, weights, fmri, stimuli, captions, trials, image, text, text_index,
                  mesh, vertex_voxel, rois, extra, questions, predictions, cache_problem, repeats, counts)


def _expect(condition: bool, file: str, problem: str) -> None:
    if not condition:
        raise BundleError(file, problem)


# ---------------------------------------------------------------------- manifest schema

def validate_manifest(manifest: Any) -> dict[str, Any]:
    """Check every field of the manifest against :data:`format.MANIFEST_FIELDS`; fill ``vlm`` and
    ``synthetic`` defaults. Returns a new dict."""
    _expect(isinstance(manifest, dict), F.MANIFEST, "must be a JSON object")
    _expect(manifest.get("format") == F.FORMAT_NAME, F.MANIFEST,
            f"unknown format {_shown(manifest.get('format'))}, expected {F.FORMAT_NAME!r}")
    version = manifest.get("version")
    _expect(isinstance(version, int) and not isinstance(version, bool) and version in F.KNOWN_VERSIONS, F.MANIFEST,
            f"unknown format version {_shown(version)}; this brainview reads versions {list(F.KNOWN_VERSIONS)}")
    out = dict(manifest)
    for key, spec in F.MANIFEST_FIELDS.items():
        if version < spec.since or (key not in manifest and not spec.required):
            continue  # a key of a later version is no part of an older manifest: kept, never read
        _expect(key in manifest, F.MANIFEST, f'missing "{key}" ({spec.what})')
        out[key] = _check_field(key, manifest[key], spec)
    out["vlm"] = {**F.VLM_DEFAULTS, **out["vlm"]}
    problem = check_question_settings(out["vlm"])
    _expect(problem is None, F.MANIFEST, str(problem))
    out["synthetic"] = {**F.SYNTHETIC_DEFAULTS, **out["synthetic"]}
    return out


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _check_field(name: str, value: Any, spec: F.Field) -> Any:
    def bad(expected: str) -> BundleError:
        return BundleError(F.MANIFEST, f'"{name}" must be {expected} ({spec.what}), got {_shown(value)}')

    kind = spec.kind
    if kind == "int" or kind == "number":
        ok_type = isinstance(value, int) if kind == "int" else isinstance(value, (int, float))
        if not ok_type or isinstance(value, bool) or not math.isfinite(value):
            raise bad("an integer" if kind == "int" else "a number")
        if spec.choices is not None and value not in spec.choices:
            raise bad(f"one of {list(spec.choices)}")
        if (spec.low is not None and not value > spec.low - (kind == "int")) or (
                spec.high is not None and value > spec.high):
            low = spec.low if kind == "int" else f"more than {spec.low}"
            raise bad(f"{'an integer' if kind == 'int' else 'a number'} from {low} to {spec.high:g}")
    elif kind == "str":
        if not isinstance(value, str):
            raise bad("a string")
        if len(value) > spec.max_length:
            raise bad(f"a string of at most {spec.max_length} characters")
        if spec.choices is not None and value not in spec.choices:
            raise bad(f"one of {list(spec.choices)}")
        if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
            raise bad(f"a string matching {spec.pattern}")
    elif kind == "reference":
        if value is not None:
            if not isinstance(value, str) or not value.strip() or len(value) > spec.max_length:
                raise bad("a non-empty string or null")
            parts = Path(value).parts
            if Path(value).is_absolute() or value.startswith("~") or ".." in parts or "\\" in value:
                raise bad("a folder inside the bundle or a model id (not an absolute path, ~ or ..)")
    elif kind == "stages":
        if not (isinstance(value, list) and value and all(isinstance(s, str) and s in F.STAGES for s in value)
                and len(set(value)) == len(value)):
            raise bad(f"a list of distinct stages out of {list(F.STAGES)}")
    elif kind == "object":
        if not isinstance(value, dict):
            raise bad("an object")
        if spec.fields is not None:
            unknown = sorted(set(value) - set(spec.fields))
            if unknown:
                raise BundleError(F.MANIFEST, f'"{name}" has unknown keys {unknown}; known: {list(spec.fields)}')
            for key, sub in spec.fields.items():
                if key in value:
                    _check_field(f"{name}.{key}", value[key], sub)
                elif sub.required:
                    raise BundleError(F.MANIFEST, f'missing "{name}.{key}" ({sub.what})')
    return value


def check_model_folder(root: Path, reference: str) -> None:
    """A model folder the manifest names must be a folder inside the bundle with no links out of it."""
    folder = root / reference
    if not inside(folder, root.resolve()):
        raise BundleError(reference, "points outside the bundle (a symbolic link); a bundle must contain its models")
    if not folder.is_dir():
        raise BundleError(reference, "is not a folder (a model saved with save_pretrained)")
    walk_inside(folder, root.resolve(), reference)


# ---------------------------------------------------------------------- arrays and files

#: bytes of an array scanned at a time (memory stays near this, whatever the bundle's size)
_CHUNK_BYTES = 16 << 20
#: exponent bits of IEEE floats: all set means infinite or NaN
_EXPONENT = {2: (np.uint16, 0x7C00), 4: (np.uint32, 0x7F800000), 8: (np.uint64, 0x7FF0000000000000)}


def _check_finite(array: np.ndarray, rel: str, unit_rows: bool = False, what: str = "") -> None:
    """Check every value for NaN/inf, a chunk of rows at a time. A memory-mapped array is read with
    plain file reads into one reused buffer, so scanning 1.5 GB of weights neither copies them
    (nor casts them to float32) nor leaves their pages counted in the process's memory."""
    flat = array.reshape(array.shape[0], -1) if array.ndim > 1 else array.reshape(-1, 1)
    if flat.size == 0:
        return
    rows = max(1, _CHUNK_BYTES // max(1, flat.shape[1] * flat.dtype.itemsize))
    for start, chunk in _row_chunks(flat, rows):
        uint, mask = _EXPONENT[chunk.dtype.itemsize]
        bad = (chunk.view(uint) & uint(mask)) == uint(mask)
        if bad.any():
            row = start + int(np.argwhere(bad)[0, 0])
            raise BundleError(rel, f"{what}contains NaN or infinite values (first in row {row})")
        if unit_rows:
            norms = np.linalg.norm(chunk.astype(np.float64), axis=1)
            if not np.allclose(norms, 1.0, atol=1e-3):
                row = start + int(np.argmax(~np.isclose(norms, 1.0, atol=1e-3)))
                raise BundleError(rel, f"rows must be L2-normalized; row {row} has norm {norms[row - start]:.4g}")


def _row_chunks(flat: np.ndarray, rows: int):
    """(first row, rows as an array) for consecutive blocks of a 2-D array; from the file itself when
    ``flat`` is a C-ordered memory map, else from memory."""
    base = flat.base if isinstance(flat.base, np.memmap) else flat
    filename = getattr(base, "filename", None)
    if filename is None or not flat.flags.c_contiguous or base.size != flat.size:
        for start in range(0, flat.shape[0], rows):
            yield start, np.ascontiguousarray(flat[start:start + rows])
        return
    row_bytes = flat.shape[1] * flat.dtype.itemsize
    buffer = np.empty((rows, flat.shape[1]), dtype=flat.dtype)
    with open(filename, "rb", buffering=0) as handle:
        handle.seek(base.offset)
        for start in range(0, flat.shape[0], rows):
            n = min(rows, flat.shape[0] - start)
            view = buffer[:n]
            if handle.readinto(memoryview(view).cast("B")) != n * row_bytes:
                raise OSError(f"{filename} ended while it was being read")
            yield start, view


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_text_index(files: BundleFiles, n_texts: int, captions: list[list[str]]) -> np.ndarray:
    raw = files.json(F.TEXT_INDEX, 1 << 20 | 64 * n_texts)
    ok = isinstance(raw, list) and all(isinstance(p, list) and len(p) == 2 and all(map(_is_index, p)) for p in raw)
    _expect(ok, F.TEXT_INDEX, "must be a list of [trial_index, caption_index] integer pairs")
    _expect(len(raw) == n_texts, F.TEXT_INDEX, f"has {len(raw)} entries but {F.TEXT_EMBEDDINGS} has {n_texts} rows")
    for row, (trial, caption) in enumerate(raw):
        _expect(0 <= trial < len(captions) and 0 <= caption < len(captions[trial]), F.TEXT_INDEX,
                f"entry {row} = [{trial}, {caption}] points to no reference caption")
    index = np.asarray(raw, dtype=np.int64).reshape(-1, 2)
    without = np.setdiff1d(np.arange(len(captions)), index[:, 0])
    _expect(without.size == 0, F.TEXT_INDEX,
            f"trial {int(without[0]) if without.size else 0} has no embedded caption; every trial needs at least one")
    return index


def _read_weights(files: BundleFiles, manifest: dict[str, Any]) -> dict[str, np.ndarray]:
    """The brain model's tensors, memory-mapped in their stored dtype (float16 or float32)."""
    n_out = manifest["n_query"] * manifest["query_dim"]
    expected = {}
    for stage in manifest["stages"]:
        expected[f"{stage}.weight"] = (n_out, manifest["n_voxels"])
        expected[f"{stage}.bias"] = (n_out,)
    if "stage2" in manifest["stages"]:
        expected["stage2.projection.weight"] = (manifest["text_dim"], manifest["query_dim"])
        expected["stage2.projection.bias"] = (manifest["text_dim"],)
    weights = files.safetensors(F.BRAIN_MODEL, expected)
    for key, tensor in weights.items():
        _check_finite(tensor, F.BRAIN_MODEL, what=f'tensor "{key}" ')
    return weights


def _read_predictions(files: BundleFiles, manifest: dict[str, Any], n_trials: int
                      ) -> tuple[dict[str, np.ndarray], str | None]:
    """The prediction cache the manifest announces (version 2), memory-mapped: one array per stage of
    shape (n_trials, n_query, query_dim) in the announced dtype, every value finite; and why it
    cannot be used. The cache is derived data: a missing or damaged one (a ``brainview cache`` that
    was killed, a file deleted) leaves the bundle without a cache, as version 1, not unopenable."""
    spec = manifest.get("predictions") if manifest["version"] >= F.PREDICTIONS_VERSION else None
    if spec is None:
        return {}, None
    unknown = [s for s in spec["stages"] if s not in manifest["stages"]]
    _expect(not unknown, F.MANIFEST, f'"predictions.stages" names {unknown}, which the brain model does not have')
    out = {}
    try:
        for stage in spec["stages"]:
            rel = F.prediction_file(stage)
            tokens = files.npy(rel, (n_trials, manifest["n_query"], manifest["query_dim"]), (spec["dtype"],),
                               None, ("n_trials", "n_query", "query_dim"))
            _check_finite(tokens, rel)
            out[stage] = tokens
    except BundleError as exc:
        return {}, str(exc)
    return out, None


def _read_mesh(files: BundleFiles) -> dict[str, dict[str, np.ndarray]]:
    mesh: dict[str, dict[str, np.ndarray]] = {}
    with files.npz(F.MESH) as npz:
        for hemi in F.HEMISPHERES:
            _, shape = npz.header(f"{hemi}_inflated")
            n_vert = shape[0] if shape else 0
            _expect(len(shape) == 2 and n_vert > 0, F.MESH,
                    f'"{hemi}_inflated" must be float (V, 3) with V > 0: the {hemi} hemisphere has no vertices'
                    if len(shape) == 2 else f'"{hemi}_inflated" must be float (V, 3), got shape {shape}')
            parts = {}
            for key in ("inflated", "pial"):
                arr = npz.read(f"{hemi}_{key}", (n_vert, 3), "f", {})
                _expect(bool(np.isfinite(arr).all()), F.MESH, f'"{hemi}_{key}" contains NaN or infinite values')
                parts[key] = arr.astype(np.float32, copy=False)
            _expect(n_vert <= F.MAX_VERTICES, F.MESH, f"the {hemi} hemisphere has {n_vert:,} vertices, more than "
                                                      f"{F.MAX_VERTICES:,}")
            faces = npz.read(f"{hemi}_faces", (None, 3), "iu", {0: 4 * n_vert}, ("n_faces", "3"))
            _expect(faces.shape[0] > 0, F.MESH, f'"{hemi}_faces" is empty: the {hemi} hemisphere has no surface')
            _expect(int(faces.min()) >= 0 and int(faces.max()) < n_vert, F.MESH,
                    f'"{hemi}_faces" refers to vertices outside 0..{n_vert - 1}')
            parts["faces"] = faces.astype(np.int32)
            sulc = npz.read(f"{hemi}_sulc", (n_vert,), "f", {})
            _expect(bool(np.isfinite(sulc).all()), F.MESH, f'"{hemi}_sulc" contains NaN or infinite values')
            parts["sulc"] = sulc.astype(np.float32, copy=False)
            for key, columns in F.MESH_OPTIONAL.items():
                if f"{hemi}_{key}" in npz:
                    arr = npz.read(f"{hemi}_{key}", (n_vert,) if columns is None else (n_vert, columns), "f", {})
                    _expect(bool(np.isfinite(arr).all()), F.MESH, f'"{hemi}_{key}" contains NaN or infinite values')
                    parts[key] = arr.astype(np.float32, copy=False)
            parts.update(_read_flat(npz, hemi, n_vert))
            mesh[hemi] = parts
    _expect(len({"flat" in mesh[h] for h in F.HEMISPHERES}) == 1, F.MESH,
            "has a flatmap for one hemisphere only; give lh_flat and rh_flat, or neither")
    return mesh


def _read_flat(npz, hemi: str, n_vert: int) -> dict[str, np.ndarray]:
    """The optional flatmap of one hemisphere: every vertex's flat position and the faces the cut keeps."""
    coords_key, faces_key = (f"{hemi}_{key}" for key in F.MESH_FLAT_KEYS)
    if coords_key not in npz and faces_key not in npz:
        return {}
    _expect(coords_key in npz and faces_key in npz, F.MESH, f'"{coords_key}" and "{faces_key}" come together')
    coords = npz.read(coords_key, (n_vert, 3), "f", {})
    _expect(bool(np.isfinite(coords).all()), F.MESH, f'"{coords_key}" contains NaN or infinite values')
    faces = npz.read(faces_key, (None, 3), "iu", {0: 4 * n_vert}, ("n_faces", "3"))
    _expect(faces.shape[0] > 0, F.MESH, f'"{faces_key}" is empty: the flatmap has no faces')
    _expect(int(faces.min()) >= 0 and int(faces.max()) < n_vert, F.MESH,
            f'"{faces_key}" refers to vertices outside 0..{n_vert - 1}')
    return {"flat": coords.astype(np.float32, copy=False), "flat_faces": faces.astype(np.int32)}


def _read_vertex_voxel(files: BundleFiles, n_vertices: int, n_voxels: int) -> sp.csr_matrix:
    rel = F.VERTEX_VOXEL
    with files.npz(rel) as npz:
        for key in ("data", "indices", "indptr", "shape", "format"):
            _expect(key in npz, rel, f'is not a scipy.sparse CSR archive: missing "{key}"')
        fmt = npz.read("format", (), "SU", {})
        fmt = fmt.item().decode("ascii", "replace") if fmt.dtype.kind == "S" else str(fmt.item())
        _expect(fmt == "csr", rel, f"must be a CSR matrix (scipy.sparse.save_npz of a csr_matrix), got {fmt[:20]!r}")
        shape = tuple(int(s) for s in npz.read("shape", (2,), "iu", {}))
        _expect(shape == (n_vertices, n_voxels), rel,
                f"has shape {shape}, expected (n_vertices_lh + n_vertices_rh, n_voxels) = {(n_vertices, n_voxels)}")
        nnz_limit = {0: n_vertices * min(n_voxels, F.MAX_VOXELS_PER_VERTEX)}
        indptr = npz.read("indptr", (n_vertices + 1,), "iu", {}).astype(np.int64)
        indices = npz.read("indices", (None,), "iu", nnz_limit)
        data = npz.read("data", (None,), "f", nnz_limit)
    _expect(int(indptr[0]) == 0 and int(indptr[-1]) == indices.size == data.size
            and bool(np.all(np.diff(indptr) >= 0)), rel, "has an inconsistent CSR index pointer")
    _expect(indices.size == 0 or (int(indices.min()) >= 0 and int(indices.max()) < n_voxels), rel,
            f"refers to voxels outside 0..{n_voxels - 1}")
    _expect(bool(np.isfinite(data).all()) and bool((data >= 0).all()), rel, "weights must be finite and non-negative")
    matrix = sp.csr_matrix((data.astype(np.float32), indices.astype(np.int64), indptr), shape=shape)
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    bad = ~(np.isclose(sums, 1.0, atol=1e-4) | (sums == 0))
    _expect(not bad.any(), rel,
            f"row weights must sum to 1 or 0; vertex {int(np.argmax(bad)) if bad.any() else -1} sums to "
            f"{sums[bad][0] if bad.any() else 0:.4f}")
    return matrix


def _read_rois(files: BundleFiles, n_voxels: int) -> dict[str, dict[str, Any]]:
    raw = files.json(F.ROIS, 1 << 20 | 8 * 64 * n_voxels)
    _expect(isinstance(raw, dict), F.ROIS, 'must be an object {"ROI name": {"group": str, "voxels": [int, ...]}}')
    rois = {}
    for name, spec in raw.items():
        _expect(bool(name.strip()) and len(name) <= 200, F.ROIS, f"ROI name {_shown(name)} must be 1-200 characters")
        _expect(isinstance(spec, dict) and isinstance(spec.get("group"), str) and isinstance(spec.get("voxels"), list),
                F.ROIS, f'ROI {_shown(name)} must be {{"group": str, "voxels": [int, ...]}}')
        voxels = spec["voxels"]
        _expect(bool(voxels), F.ROIS, f"ROI {_shown(name)} has no voxels")
        _expect(all(map(_is_index, voxels)), F.ROIS, f"ROI {_shown(name)} voxels must be integers")
        _expect(min(voxels) >= 0 and max(voxels) < n_voxels, F.ROIS,
                f"ROI {_shown(name)} refers to voxels outside 0..{n_voxels - 1}")
        rois[name] = {**spec, "voxels": np.unique(np.asarray(voxels, dtype=np.int64))}
    return rois
