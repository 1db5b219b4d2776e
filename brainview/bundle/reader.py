"""Open and validate a decoding bundle (DESIGN.md §3).

Opening is all-or-nothing: every file is checked against the manifest and each other, and the
first problem raises :class:`BundleError` naming the file and what is wrong. Large arrays are
memory-mapped. Nothing is ever unpickled: a bundle is data, opening one runs no code from it.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from brainview.bundle import format as F
from brainview.bundle.questions import check_question_settings, read_questions
from brainview.errors import UserError

_CHUNK_ROWS = 256


class BundleError(UserError):
    """A bundle that cannot be opened; the message names the file and the problem."""

    def __init__(self, file: str | None, problem: str):
        self.file = file
        self.problem = problem
        super().__init__(f"{file}: {problem}" if file else problem)


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
    questions: list[list[dict[str, Any]]] | None = None  # the optional QA set, per trial

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
        """A model reference from the manifest: a folder inside the bundle wins over a hub id."""
        if not reference:
            return None
        local = self.path / reference
        return str(local) if local.exists() else reference


def open_bundle(path: str | Path) -> Bundle:
    """Open and validate the bundle at ``path``; raise :class:`BundleError` on any problem."""
    root = Path(path).expanduser()
    if not root.exists():
        raise BundleError(None, f"no bundle at {root}: the path does not exist")
    if not root.is_dir():
        raise BundleError(None, f"{root} is not a bundle: a bundle is a directory with {F.MANIFEST}")
    for rel in F.REQUIRED_FILES:
        if not (root / rel).is_file():
            raise BundleError(rel, f"missing from the bundle at {root}")

    manifest = _read_manifest(root)
    n_vox, n_q, q_dim, t_dim = (manifest[k] for k in ("n_voxels", "n_query", "query_dim", "text_dim"))

    fmri = _load_npy(root, F.FMRI, ndim=2, dtypes=("float32", "float16"))
    n_trials = fmri.shape[0]
    _expect(fmri.shape[1] == n_vox, F.FMRI, f"has {fmri.shape[1]} voxels but the manifest says n_voxels={n_vox}")
    _expect(n_trials > 0, F.FMRI, "has no trials")
    _check_finite(fmri, F.FMRI)

    stimuli = _load_npy(root, F.STIMULI, ndim=4, dtypes=("uint8",))
    _expect(stimuli.shape[0] == n_trials, F.STIMULI, f"has {stimuli.shape[0]} images but {F.FMRI} has {n_trials} trials")
    _expect(stimuli.shape[3] == 3, F.STIMULI, f"images must be RGB (n, H, W, 3), got shape {stimuli.shape}")

    captions = _read_json(root, F.CAPTIONS)
    _expect(isinstance(captions, list) and all(
        isinstance(c, list) and c and all(isinstance(s, str) for s in c) for c in captions),
        F.CAPTIONS, "must be a list with, per trial, a non-empty list of caption strings")
    _expect(len(captions) == n_trials, F.CAPTIONS, f"has captions for {len(captions)} trials, expected {n_trials}")

    trials = _read_json(root, F.TRIALS)
    _expect(isinstance(trials, list) and all(isinstance(t, dict) and isinstance(t.get("id"), str) for t in trials),
            F.TRIALS, 'must be a list of objects, each with a string "id"')
    _expect(len(trials) == n_trials, F.TRIALS, f"describes {len(trials)} trials, expected {n_trials}")
    ids = [t["id"] for t in trials]
    _expect(len(set(ids)) == len(ids), F.TRIALS, "trial ids are not unique")

    image = _load_npy(root, F.IMAGE_EMBEDDINGS, ndim=3, dtypes=("float32",))
    _expect(image.shape == (n_trials, n_q, q_dim), F.IMAGE_EMBEDDINGS,
            f"has shape {image.shape}, expected (n_trials, n_query, query_dim) = {(n_trials, n_q, q_dim)}")
    _check_finite(image, F.IMAGE_EMBEDDINGS)

    text = _load_npy(root, F.TEXT_EMBEDDINGS, ndim=2, dtypes=("float32",))
    _expect(text.shape[1] == t_dim, F.TEXT_EMBEDDINGS, f"has width {text.shape[1]} but the manifest says text_dim={t_dim}")
    _check_finite(text, F.TEXT_EMBEDDINGS)
    norms = np.linalg.norm(np.asarray(text, dtype=np.float64), axis=1)
    _expect(np.allclose(norms, 1.0, atol=1e-3), F.TEXT_EMBEDDINGS, "rows must be L2-normalized")

    text_index = _read_text_index(root, text.shape[0], captions)
    weights = _read_weights(root, manifest)
    mesh = _read_mesh(root)
    n_vertices = sum(mesh[h]["inflated"].shape[0] for h in F.HEMISPHERES)
    vertex_voxel = _read_vertex_voxel(root, n_vertices, n_vox)
    rois = _read_rois(root, n_vox)
    try:
        questions = read_questions(root, n_trials)
    except ValueError as exc:
        raise BundleError(F.QUESTIONS, str(exc)) from None

    return Bundle(root, manifest, weights, fmri, stimuli, captions, trials, image, text, text_index,
                  mesh, vertex_voxel, rois, questions)


def _expect(condition: bool, file: str, problem: str) -> None:
    if not condition:
        raise BundleError(file, problem)


def _read_json(root: Path, rel: str) -> Any:
    try:
        return json.loads((root / rel).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(rel, f"is not valid JSON ({exc})") from None


def _read_manifest(root: Path) -> dict[str, Any]:
    manifest = _read_json(root, F.MANIFEST)
    _expect(isinstance(manifest, dict), F.MANIFEST, "must be a JSON object")
    _expect(manifest.get("format") == F.FORMAT_NAME, F.MANIFEST,
            f"unknown format {manifest.get('format')!r}, expected {F.FORMAT_NAME!r}")
    version = manifest.get("version")
    _expect(version in F.KNOWN_VERSIONS, F.MANIFEST,
            f"unknown format version {version!r}; this brainview reads versions {list(F.KNOWN_VERSIONS)}")
    for key, (kind, what) in F.MANIFEST_FIELDS.items():
        _expect(key in manifest, F.MANIFEST, f'missing "{key}" ({what})')
        value = manifest[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        _expect(ok, F.MANIFEST, f'"{key}" must be {kind.__name__ if isinstance(kind, type) else kind}, got {value!r}')
    for key in ("n_voxels", "n_query", "query_dim", "text_dim"):
        _expect(manifest[key] > 0, F.MANIFEST, f'"{key}" must be positive, got {manifest[key]}')
    stages = manifest["stages"]
    _expect(bool(stages) and all(s in F.STAGES for s in stages) and len(set(stages)) == len(stages), F.MANIFEST,
            f'"stages" must list distinct stages out of {list(F.STAGES)}, got {stages!r}')
    problem = check_question_settings(manifest["vlm"])
    _expect(problem is None, F.MANIFEST, str(problem))
    scale = manifest["synthetic"].get("scale", F.SYNTHETIC_DEFAULTS["scale"])
    _expect(isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0, F.MANIFEST,
            f'"synthetic.scale" must be a positive number, got {scale!r}')
    return manifest


def _load_npy(root: Path, rel: str, *, ndim: int, dtypes: tuple[str, ...]) -> np.ndarray:
    try:
        array = np.load(root / rel, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "object" in str(exc).lower():
            raise BundleError(rel, "holds a pickled object array; bundles never contain pickles") from None
        raise BundleError(rel, f"is not a readable .npy array ({exc})") from None
    except OSError as exc:
        raise BundleError(rel, f"is not a readable .npy array ({exc})") from None
    _expect(array.dtype.kind != "O", rel, "holds a pickled object array; bundles never contain pickles")
    _expect(array.dtype.name in dtypes, rel, f"has dtype {array.dtype.name}, expected {' or '.join(dtypes)}")
    _expect(array.ndim == ndim, rel, f"must have {ndim} dimensions, got shape {array.shape}")
    return array


def _check_finite(array: np.ndarray, rel: str) -> None:
    """Scan in chunks so a memory-mapped array is never copied whole."""
    flat = array.reshape(array.shape[0], -1)
    for start in range(0, flat.shape[0], _CHUNK_ROWS):
        chunk = np.asarray(flat[start:start + _CHUNK_ROWS])
        if not np.isfinite(chunk).all():
            row = start + int(np.argwhere(~np.isfinite(chunk))[0, 0])
            raise BundleError(rel, f"contains NaN or infinite values (first in row {row})")


def _read_text_index(root: Path, n_texts: int, captions: list[list[str]]) -> np.ndarray:
    raw = _read_json(root, F.TEXT_INDEX)
    ok = isinstance(raw, list) and all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(i, int) and not isinstance(i, bool) for i in p)
        for p in raw)
    _expect(ok, F.TEXT_INDEX, "must be a list of [trial_index, caption_index] integer pairs")
    _expect(len(raw) == n_texts, F.TEXT_INDEX, f"has {len(raw)} entries but {F.TEXT_EMBEDDINGS} has {n_texts} rows")
    for row, (trial, caption) in enumerate(raw):
        _expect(0 <= trial < len(captions) and 0 <= caption < len(captions[trial]), F.TEXT_INDEX,
                f"entry {row} = [{trial}, {caption}] points to no reference caption")
    return np.asarray(raw, dtype=np.int64).reshape(-1, 2)


def _read_weights(root: Path, manifest: dict[str, Any]) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        weights = load_file(str(root / F.BRAIN_MODEL))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(F.BRAIN_MODEL, f"is not a readable safetensors file ({exc})") from None
    n_out = manifest["n_query"] * manifest["query_dim"]
    expected = {}
    for stage in manifest["stages"]:
        expected[f"{stage}.weight"] = (n_out, manifest["n_voxels"])
        expected[f"{stage}.bias"] = (n_out,)
    if "stage2" in manifest["stages"]:
        expected["stage2.projection.weight"] = (manifest["text_dim"], manifest["query_dim"])
        expected["stage2.projection.bias"] = (manifest["text_dim"],)
    for key, shape in expected.items():
        _expect(key in weights, F.BRAIN_MODEL, f'missing tensor "{key}" for the stages {manifest["stages"]}')
        _expect(weights[key].shape == shape, F.BRAIN_MODEL,
                f'tensor "{key}" has shape {weights[key].shape}, expected {shape}')
        _expect(weights[key].dtype.kind == "f", F.BRAIN_MODEL, f'tensor "{key}" must be floating point')
        _expect(bool(np.isfinite(weights[key]).all()), F.BRAIN_MODEL, f'tensor "{key}" contains NaN or infinite values')
    return {k: v.astype(np.float32, copy=False) for k, v in weights.items() if k in expected}


def _load_npz(root: Path, rel: str) -> dict[str, np.ndarray]:
    try:
        with np.load(root / rel, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise BundleError(rel, "holds a pickled object array; bundles never contain pickles") from None
        raise BundleError(rel, f"is not a readable .npz archive ({exc})") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(rel, f"is not a readable .npz archive ({exc})") from None


def _read_mesh(root: Path) -> dict[str, dict[str, np.ndarray]]:
    raw = _load_npz(root, F.MESH)
    mesh: dict[str, dict[str, np.ndarray]] = {}
    for hemi in F.HEMISPHERES:
        parts = {}
        for key in F.MESH_KEYS:
            name = f"{hemi}_{key}"
            _expect(name in raw, F.MESH, f'missing array "{name}"')
            parts[key] = raw[name]
        n_vert = parts["inflated"].shape[0]
        for key in ("inflated", "pial"):
            arr = parts[key]
            _expect(arr.ndim == 2 and arr.shape == (n_vert, 3) and arr.dtype.kind == "f", F.MESH,
                    f'"{hemi}_{key}" must be float (V, 3) with V={n_vert}, got {arr.dtype} {arr.shape}')
            _expect(bool(np.isfinite(arr).all()), F.MESH, f'"{hemi}_{key}" contains NaN or infinite values')
            parts[key] = arr.astype(np.float32, copy=False)
        faces = parts["faces"]
        _expect(faces.ndim == 2 and faces.shape[1] == 3 and faces.dtype.kind in "iu", F.MESH,
                f'"{hemi}_faces" must be integer (F, 3), got {faces.dtype} {faces.shape}')
        _expect(faces.size == 0 or (faces.min() >= 0 and faces.max() < n_vert), F.MESH,
                f'"{hemi}_faces" refers to vertices outside 0..{n_vert - 1}')
        parts["faces"] = faces.astype(np.int32, copy=False)
        _expect(parts["sulc"].shape == (n_vert,), F.MESH, f'"{hemi}_sulc" must have one value per vertex ({n_vert})')
        parts["sulc"] = parts["sulc"].astype(np.float32, copy=False)
        mesh[hemi] = parts
    return mesh


def _read_vertex_voxel(root: Path, n_vertices: int, n_voxels: int) -> sp.csr_matrix:
    raw = _load_npz(root, F.VERTEX_VOXEL)
    for key in ("data", "indices", "indptr", "shape"):
        _expect(key in raw, F.VERTEX_VOXEL, f'is not a scipy.sparse CSR archive: missing "{key}"')
    fmt = raw.get("format")
    _expect(fmt is None or str(fmt.item() if hasattr(fmt, "item") else fmt).strip("b'") == "csr", F.VERTEX_VOXEL,
            f"must be CSR, got {fmt}")
    shape = tuple(int(s) for s in raw["shape"])
    _expect(shape == (n_vertices, n_voxels), F.VERTEX_VOXEL,
            f"has shape {shape}, expected (n_vertices_lh + n_vertices_rh, n_voxels) = {(n_vertices, n_voxels)}")
    indices, indptr, data = raw["indices"], raw["indptr"], raw["data"]
    _expect(indptr.shape == (n_vertices + 1,) and indptr[0] == 0 and indptr[-1] == indices.size == data.size
            and bool(np.all(np.diff(indptr) >= 0)), F.VERTEX_VOXEL, "has an inconsistent CSR index pointer")
    _expect(indices.size == 0 or (indices.min() >= 0 and indices.max() < n_voxels), F.VERTEX_VOXEL,
            f"refers to voxels outside 0..{n_voxels - 1}")
    _expect(bool(np.isfinite(data).all()) and bool((data >= 0).all()), F.VERTEX_VOXEL,
            "weights must be finite and non-negative")
    matrix = sp.csr_matrix((data.astype(np.float32), indices, indptr), shape=shape)
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    bad = ~(np.isclose(sums, 1.0, atol=1e-4) | (sums == 0))
    _expect(not bad.any(), F.VERTEX_VOXEL,
            f"row weights must sum to 1 or 0; vertex {int(np.argmax(bad)) if bad.any() else -1} sums to "
            f"{sums[bad][0] if bad.any() else 0:.4f}")
    return matrix


def _read_rois(root: Path, n_voxels: int) -> dict[str, dict[str, Any]]:
    raw = _read_json(root, F.ROIS)
    _expect(isinstance(raw, dict), F.ROIS, 'must be an object {"ROI name": {"group": str, "voxels": [int, ...]}}')
    rois = {}
    for name, spec in raw.items():
        _expect(isinstance(spec, dict) and isinstance(spec.get("group"), str) and isinstance(spec.get("voxels"), list),
                F.ROIS, f'ROI "{name}" must be {{"group": str, "voxels": [int, ...]}}')
        voxels = spec["voxels"]
        _expect(bool(voxels), F.ROIS, f'ROI "{name}" has no voxels')
        _expect(all(isinstance(v, int) and not isinstance(v, bool) for v in voxels), F.ROIS,
                f'ROI "{name}" voxels must be integers')
        arr = np.asarray(voxels, dtype=np.int64)
        _expect(arr.min() >= 0 and arr.max() < n_voxels, F.ROIS,
                f'ROI "{name}" refers to voxels outside 0..{n_voxels - 1}')
        rois[name] = {**spec, "voxels": np.unique(arr)}
    return rois
