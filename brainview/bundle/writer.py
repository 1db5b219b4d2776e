"""Write a decoding bundle (DESIGN.md §3) and check it by reading it back.

The bundle is assembled in a temporary sibling folder and moved into place at the end, so an
interrupted export never leaves a half-written bundle where the app would open it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from brainview.bundle import format as F
from brainview.bundle.reader import Bundle, open_bundle


def make_manifest(*, name: str, dataset: str, subject: str, n_voxels: int, n_query: int, query_dim: int,
                  text_dim: int, stages: Sequence[str] = F.STAGES, vlm: Mapping[str, Any] | None = None,
                  synthetic: Mapping[str, Any] | None = None, provenance: Mapping[str, Any] | None = None,
                  metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A complete manifest with defaults for the optional parts: version 1, what a bundle without a
    prediction cache is (:func:`brainview.bundle.predictions.write_cache` makes it version 2)."""
    return {
        "format": F.FORMAT_NAME, "version": 1, "name": name, "dataset": dataset,
        "subject": subject, "n_voxels": int(n_voxels), "n_query": int(n_query), "query_dim": int(query_dim),
        "text_dim": int(text_dim), "stages": list(stages),
        "vlm": {**F.VLM_DEFAULTS, **(vlm or {})},
        "synthetic": {**F.SYNTHETIC_DEFAULTS, **(synthetic or {})},
        "provenance": dict(provenance or {}), "metrics": dict(metrics or {}),
    }


def write_bundle(path: str | Path, *, manifest: Mapping[str, Any], weights: Mapping[str, np.ndarray],
                 fmri: np.ndarray, stimuli: np.ndarray, captions: Sequence[Sequence[str]],
                 trials: Sequence[Mapping[str, Any]], image_embeddings: np.ndarray, text_embeddings: np.ndarray,
                 text_index: Sequence[Sequence[int]], mesh: Mapping[str, Mapping[str, np.ndarray]],
                 vertex_voxel: sp.spmatrix, rois: Mapping[str, Mapping[str, Any]],
                 vlm_folders: Mapping[str, str | Path] | None = None, weights_dtype=np.float32,
                 questions: Sequence[Sequence[Mapping[str, Any]]] | None = None,
                 fmri_repeats: np.ndarray | None = None, repeat_counts: Sequence[int] | None = None,
                 overwrite: bool = False) -> Bundle:
    """Write every part of a bundle to ``path`` and return it opened (and so validated).

    ``mesh`` maps ``"lh"``/``"rh"`` to ``{"inflated", "pial", "faces", "sulc"}``; ``rois`` maps a
    name to ``{"group": str, "voxels": [...]}``; ``vlm_folders`` maps a name under ``vlm/`` to a
    folder saved with ``save_pretrained`` that is copied in (reference it in the manifest as
    ``"vlm/NAME"``). ``weights_dtype=np.float16`` halves the brain model on disk; the reader
    computes in float32 either way. ``questions``: the optional QA set, per trial a list of
    ``{"type", "question", "answers"}`` (``test/questions.json``). ``fmri_repeats``: the optional single
    trials (n_trials, max_repeats, n_voxels), float16 if they or ``fmri`` are, with ``repeat_counts`` (default:
    every slot valid); slots past a trial's count are written as zeros.
    """
    from safetensors.numpy import save_file

    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for sub in ("test", "embeddings", "cortex"):
            (staging / sub).mkdir()
        (staging / F.MANIFEST).write_text(manifest_text(manifest), encoding="utf-8")
        save_file({k: np.ascontiguousarray(v, dtype=weights_dtype) for k, v in weights.items()},
                  str(staging / F.BRAIN_MODEL))
        fmri = np.asarray(fmri)
        np.save(staging / F.FMRI, fmri if fmri.dtype in (np.float16, np.float32) else fmri.astype(np.float32))
        np.save(staging / F.STIMULI, np.asarray(stimuli, dtype=np.uint8))
        _write_json(staging / F.CAPTIONS, [list(map(str, c)) for c in captions])
        _write_json(staging / F.TRIALS, [dict(t) for t in trials])
        if fmri_repeats is not None:
            stored = np.float16 if np.float16 in (fmri.dtype, np.asarray(fmri_repeats).dtype) else np.float32
            write_repeats(staging, fmri_repeats, repeat_counts, stored)
        if questions is not None:
            _write_json(staging / F.QUESTIONS, [[dict(q) for q in items] for items in questions])
        np.save(staging / F.IMAGE_EMBEDDINGS, np.asarray(image_embeddings, dtype=np.float32))
        np.save(staging / F.TEXT_EMBEDDINGS, np.asarray(text_embeddings, dtype=np.float32))
        _write_json(staging / F.TEXT_INDEX, [[int(t), int(c)] for t, c in text_index])
        np.savez_compressed(staging / F.MESH, **{
            f"{hemi}_{key}": np.asarray(mesh[hemi][key], dtype=np.int32 if key.endswith("faces") else np.float32)
            for hemi in F.HEMISPHERES for key in F.MESH_KEYS + F.MESH_FLAT_KEYS if key in mesh[hemi]})
        sp.save_npz(staging / F.VERTEX_VOXEL, sp.csr_matrix(vertex_voxel, dtype=np.float32), compressed=True)
        _write_json(staging / F.ROIS, {
            name: {**{k: v for k, v in spec.items() if k != "voxels"},
                   "voxels": [int(v) for v in np.unique(np.asarray(spec["voxels"]))]}
            for name, spec in rois.items()})
        for name, folder in (vlm_folders or {}).items():
            shutil.copytree(folder, staging / F.VLM_DIR / name)
        make_readable(staging)
        open_bundle(staging)  # refuse to publish a bundle the reader would refuse
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return open_bundle(target)


def write_repeats(root: Path, repeats: np.ndarray, counts: Sequence[int] | None, dtype) -> None:
    """``test/fmri_repeats.npy`` and ``test/fmri_repeat_counts.npy`` into the bundle folder ``root``
    (not atomic on its own: :func:`write_bundle` writes into a staging folder)."""
    repeats = np.array(repeats, dtype=dtype)
    if repeats.ndim != 3:
        raise ValueError(f"fMRI repeats are (n_trials, max_repeats, n_voxels), got shape {repeats.shape}")
    counts = np.full(len(repeats), repeats.shape[1]) if counts is None else np.asarray(counts)
    if counts.shape != (len(repeats),) or counts.min(initial=1) < 1 or counts.max(initial=1) > repeats.shape[1]:
        raise ValueError(f"repeat counts must be one integer in 1..{repeats.shape[1]} per trial")
    repeats[np.arange(repeats.shape[1])[None, :] >= counts[:, None]] = 0
    np.save(root / F.FMRI_REPEATS, repeats)
    np.save(root / F.FMRI_REPEAT_COUNTS, counts.astype(np.uint8 if repeats.shape[1] < 256 else np.int32))


def make_readable(root: Path) -> None:
    """Give the bundle ordinary permissions: the staging folder (mkdtemp) and some writers use 0o700/0o600."""
    umask = os.umask(0)
    os.umask(umask)
    root.chmod(0o777 & ~umask)
    for path in root.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float as null: JSON has no NaN, and other readers refuse Python's."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def manifest_text(manifest: Mapping) -> str:
    """The manifest as strict JSON (a training history may hold a NaN loss)."""
    return json.dumps(strict_json(manifest), indent=2, allow_nan=False) + "\n"


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False) + "\n", encoding="utf-8")
