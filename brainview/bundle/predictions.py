"""The prediction cache of a bundle (format version 2): every test trial's predicted tokens per stage,
so opening a real-size bundle needs no pass of every trial through 1.5 GB of weights.

The cache is derived data: the weights and the fMRI stay what counts. The manifest records a
fingerprint of both (:func:`fingerprints`) and a session checks the cache against a fresh
prediction of a sample of trials when it opens the bundle (``brainview.decoding.prediction_cache``);
a cache that disagrees is not used. This module only reads and writes (numpy, no torch).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from brainview.bundle import format as F
from brainview.bundle.reader import Bundle

#: weight rows of each stage that go into the weights' fingerprint (whole rows, seeded): the
#: sample check then covers every row on a few trials, the fingerprint every column on a few rows
FINGERPRINT_ROWS = 64
_CHUNK_ROWS = 4096


def fingerprints(bundle: Bundle) -> dict[str, str]:
    """``{"weights": sha256, "fmri": sha256}`` of what the cache is computed from, in milliseconds at
    NSD size: the fMRI whole (62 MB), the weights by their shapes and dtypes, every small tensor
    (biases, projection) whole and :data:`FINGERPRINT_ROWS` seeded rows of each stage's weight."""
    weights = hashlib.sha256()
    for name in sorted(bundle.weights):
        tensor = bundle.weights[name]
        weights.update(f"{name}:{tensor.dtype.str}:{tensor.shape};".encode())
        if name.endswith(".weight") and name.count(".") == 1:  # a stage's (n_out, n_voxels) matrix
            rng = np.random.default_rng(0)
            rows = np.sort(rng.choice(tensor.shape[0], size=min(FINGERPRINT_ROWS, tensor.shape[0]), replace=False))
            weights.update(np.ascontiguousarray(tensor[rows]).tobytes())
        else:
            weights.update(np.ascontiguousarray(tensor).tobytes())
    fmri = hashlib.sha256(f"{bundle.fmri.dtype.str}:{bundle.fmri.shape};".encode())
    for start in range(0, bundle.fmri.shape[0], _CHUNK_ROWS):
        fmri.update(np.ascontiguousarray(bundle.fmri[start:start + _CHUNK_ROWS]).tobytes())
    return {"weights": weights.hexdigest(), "fmri": fmri.hexdigest()}


def fingerprint_problem(bundle: Bundle) -> str | None:
    """Why the bundle's cache cannot be the predictions of its weights and fMRI (their fingerprints
    changed since it was written), or None. A bundle without a cache has no problem."""
    spec = bundle.manifest.get("predictions")
    if not bundle.predictions or spec is None:
        return None
    now = fingerprints(bundle)
    files = {"weights": F.BRAIN_MODEL, "fmri": F.FMRI}
    changed = [files[what] for what in files if spec[what] != now[what]]
    if not changed:
        return None
    names = " and ".join(changed)
    return f"{names} changed after the prediction cache was written"


#: what a killed ``brainview cache`` may leave in the bundle folder: cleaned by the next one
STALE_PATTERNS = (f".{F.PREDICTIONS_DIR}.*", f".{F.MANIFEST}.*.tmp")


def clean_stale(root: Path) -> list[str]:
    """Remove the staging folders and manifest temp files an interrupted cache write left in ``root``;
    returns their names. None of them is ever named by the manifest."""
    removed = []
    for pattern in STALE_PATTERNS:
        for path in sorted(root.glob(pattern)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def _fsync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable (POSIX)."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_manifest(root: Path, manifest: Mapping) -> None:
    """Write ``manifest`` beside the old one, durable and read back, then put it in its place (one rename)."""
    from brainview.bundle.writer import manifest_text

    fd, temp = tempfile.mkstemp(prefix=f".{F.MANIFEST}.", suffix=".tmp", dir=root)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(manifest_text(manifest))
            handle.flush()
            os.fchmod(handle.fileno(), (root / F.MANIFEST).stat().st_mode & 0o777)
            os.fsync(handle.fileno())
        json.loads(Path(temp).read_text(encoding="utf-8"))  # what was written reads back
        os.replace(temp, root / F.MANIFEST)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_folder(root)


def write_cache(bundle: Bundle, tokens: Mapping[str, np.ndarray], dtype: str = "float16") -> Path:
    """Add (or replace) the prediction cache of the bundle folder ``bundle.path``, safe against a kill
    at any step: the manifest is the single commit point.

    1. stale staging folders and manifest temp files of an interrupted run are removed;
    2. the new ``predictions/`` is written complete under a staging name;
    3. when a cache exists, the manifest first stops naming it (version 1, no cache: one rename),
       then the old folder is moved aside;
    4. the staging folder becomes ``predictions/``;
    5. the manifest naming it (version 2, with the fingerprints) replaces the old one: from here on
       the new cache is used;
    6. the old folder is deleted.

    A kill before 5 leaves a bundle that opens with its old cache (before 3) or with none (the note
    says how to rebuild it); after 5, with the new one. What a kill leaves behind is cleaned by
    the next run (step 1)."""
    if dtype not in ("float16", "float32"):
        raise ValueError(f"a prediction cache is float16 or float32, not {dtype}")
    root = bundle.path
    shape = (bundle.n_trials, bundle.n_query, bundle.query_dim)
    for stage, array in tokens.items():
        if stage not in bundle.stages or np.shape(array) != shape:
            raise ValueError(f"{stage}: expected tokens of shape {shape} for a stage of the bundle")
    without = {key: value for key, value in bundle.manifest.items() if key != "predictions"}
    without["version"] = 1
    manifest = {**without, "version": max(int(bundle.manifest["version"]), F.PREDICTIONS_VERSION),
                "predictions": {"stages": list(tokens), "dtype": dtype, **fingerprints(bundle)}}
    from brainview.bundle.writer import make_readable

    clean_stale(root)
    staging = Path(tempfile.mkdtemp(prefix=f".{F.PREDICTIONS_DIR}.", dir=root))
    try:
        for stage, array in tokens.items():
            with open(staging / f"{stage}.npy", "wb") as handle:
                np.save(handle, np.asarray(array, dtype=dtype))
                handle.flush()
                os.fsync(handle.fileno())
        make_readable(staging)
        _fsync_folder(staging)
        target = root / F.PREDICTIONS_DIR
        old = None
        if target.exists() or target.is_symlink():
            if "predictions" in bundle.manifest:
                _replace_manifest(root, without)  # from here until step 5 the bundle has no cache
            old = Path(tempfile.mkdtemp(prefix=f".{F.PREDICTIONS_DIR}.old.", dir=root))
            os.rename(target, old / F.PREDICTIONS_DIR)
        try:
            os.rename(staging, target)
            _fsync_folder(root)
            _replace_manifest(root, manifest)
        except BaseException:  # an error (a full disk): put the old cache back as it was
            if old is not None and not target.exists():
                os.rename(old / F.PREDICTIONS_DIR, target)
                _replace_manifest(root, bundle.manifest)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root
