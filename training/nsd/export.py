"""Step 7: the decoding bundle (DESIGN.md §3) that the app opens, through ``brainview.bundle.write_bundle``.

Contents: the brain model (stage 1 and, when fitted, stage 2), the test images' patterns,
stimuli and captions, their BLIP-2 targets, the subject's native inflated and pial surfaces with
sulcal depth, the vertex↔voxel map from NSD's layer transforms (``surfaces.py``), the ROI voxel
sets, and a manifest that names the BLIP-2 models given to ``extract`` (or, with ``copy_vlm``,
copies them into ``vlm/``) and records how everything was made: normalization, sessions, splits,
alphas, the stage-2 epoch, the vertex map report, the stimulus size.

Stimuli are stored downsized to ``image_size``: 224 px by default, the larger of the two sizes
the app uses them at (BLIP-2's input, which the true-image upper bound feeds them to, and the
trial view's 200 px stimulus; thumbnails are smaller), so neither is upsampled. The 982 test
images of subject 1 take 148 MB instead of 532 MB at NSD's 425 px.

Brain-model weights are stored as float16 (half the 1.5 GB per stage of subject 1) when the
test patterns' predictions move by at most ``HALF_TOLERANCE`` of their spread; the error is
measured at export, recorded in the provenance, and float32 is kept where it is exceeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainview.errors import UserError
from training.nsd.coco import read_coco_categories
from training.nsd.data import GENERATION, split_data
from training.nsd.extract import StimulusReader
from training.nsd.layout import NsdLayout, WorkDir, progress, read_json
from training.nsd.prepare import load_mask
from training.nsd.surfaces import read_surfaces, vertex_voxel_map


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Square images downsized to ``size`` px (Lanczos); images already that small are kept."""
    from PIL import Image

    if images.shape[1] <= size and images.shape[2] <= size:
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.LANCZOS)) for im in images])


WEIGHT_DTYPES = ("auto", "float16", "float32")
#: float16 weights when ‖P16 − P32‖ ≤ HALF_TOLERANCE · ‖P32 − mean(P32)‖ on the test patterns P
HALF_TOLERANCE = 1e-3
_ROWS = 2048  # weight rows brought back to float32 at once when measuring the float16 error


def half_precision_error(fmri: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> float:
    """Relative change of the predictions ``fmri @ weightᵀ + bias`` when the weights are rounded to float16.

    Relative to the predictions' spread over the patterns (not their norm, which the bias inflates).
    """
    x = np.asarray(fmri, dtype=np.float32)
    change = spread = 0.0
    for start in range(0, len(weight), _ROWS):
        w = np.asarray(weight[start:start + _ROWS], dtype=np.float32)
        exact = x @ w.T + bias[start:start + _ROWS]
        rounded = x @ w.astype(np.float16).astype(np.float32).T + bias[start:start + _ROWS]
        change += float(((rounded - exact) ** 2).sum())
        spread += float(((exact - exact.mean(0)) ** 2).sum())
    return float(np.sqrt(change / max(spread, np.finfo(np.float64).tiny)))


def _weights(work: WorkDir, test, dtype: str) -> tuple[dict[str, np.ndarray], np.dtype, dict]:
    """The brain model's tensors in the precision ``dtype`` asks for, the dtype, and the report.

    ``auto``: float16 when every stage's predictions of the test patterns (and the stage-2 text
    projection of the test images' tokens) stay within ``HALF_TOLERANCE``. Files are read one at
    a time, so one stage's float32 weights are in memory at once (1.5 GB for subject 1).
    """
    from safetensors.numpy import load_file

    if dtype not in WEIGHT_DTYPES:
        raise UserError(f"--weights-dtype must be one of {', '.join(WEIGHT_DTYPES)}, not {dtype!r}")
    work.require("fit", "stage1.safetensors")
    files = [work / "stage1.safetensors"] + ([work / "stage2.safetensors"] if (work / "stage2.safetensors").exists() else [])
    errors = {}
    if dtype == "auto":
        for path in files:
            part = load_file(str(path))
            errors[path.stem] = half_precision_error(test.fmri, part[f"{path.stem}.weight"], part[f"{path.stem}.bias"])
            if "stage2.projection.weight" in part:
                errors["stage2.projection"] = half_precision_error(
                    test.tokens.reshape(-1, test.tokens.shape[-1]), part["stage2.projection.weight"],
                    part["stage2.projection.bias"])
            del part
    chosen = np.dtype(np.float16 if dtype == "float16" or (dtype == "auto" and max(errors.values()) <= HALF_TOLERANCE)
                      else np.float32)
    tensors = {}
    for path in files:
        tensors.update({k: v.astype(chosen, copy=False) for k, v in load_file(str(path)).items()})
    if errors:
        progress("export: float16 weights move the test predictions by "
                 + ", ".join(f"{k} {v:.1e}" for k, v in errors.items())
                 + f" of their spread (tolerance {HALF_TOLERANCE:g}): storing {chosen.name}")
    report = {"requested": dtype, "stored": chosen.name, "tolerance": HALF_TOLERANCE,
              "float16_prediction_error": errors}
    return tensors, chosen, report


def export(work: str | Path, out: str | Path, *, image_size: int = 224, name: str | None = None,
           overwrite: bool = False, copy_vlm: bool = False, weights_dtype: str = "auto"):
    """Write the bundle to ``out``, return it opened; a bundle of this work already there is kept unless ``overwrite``."""
    from brainview.bundle import make_manifest, open_bundle, write_bundle

    work, out = WorkDir(work), Path(out).expanduser()
    if out.exists() and not overwrite:
        bundle = open_bundle(out)
        if bundle.manifest["provenance"].get("work") == str(work.path.resolve()):
            progress(f"export: {out} is already a bundle of this work folder, nothing to do (--overwrite to redo)")
            return bundle
        raise UserError(f"{out} exists and was not exported from {work.path}; choose another --out or --overwrite")
    prepared, extracted = work.read_log("prepare"), work.read_log("extract")
    settings = prepared["settings"]
    layout = NsdLayout(Path(settings["nsd_root"]), settings["subject"])
    test = split_data(work, "test")
    weights, stored_dtype, weights_report = _weights(work, test, weights_dtype)
    stages = [s for s in ("stage1", "stage2") if f"{s}.weight" in weights]

    mask, ijk = load_mask(layout)
    if not np.array_equal(ijk, np.load(work / "voxel_ijk.npy")):
        raise UserError(f"{layout.nsdgeneral} is not the mask {work.path} was prepared with")
    mesh = read_surfaces(layout)
    vertex_voxel, surface_report = vertex_voxel_map(layout, mask, mesh)
    progress(f"export: vertex map of {surface_report['n_vertices']} vertices; "
             f"{surface_report['unreached_voxels_attached']} voxels reached by no layer sample were attached "
             f"to their nearest vertex (at most {surface_report['max_attach_distance_voxels']:.1f} voxels away)")

    reader = StimulusReader(layout.stimuli)
    try:
        originals = reader([r["nsd_id"] for r in test.records])
    finally:
        reader.close()
    stimuli = resize_images(originals, image_size)
    source_size = list(originals.shape[1:3])
    del originals  # 0.54 GB at 425 px for 1,000 images, not needed while the bundle is written

    vlm_refs = {"captioner": extracted["settings"]["captioner"], "retrieval": extracted["settings"]["retrieval"]}
    vlm_folders = None
    if copy_vlm:
        for role, ref in vlm_refs.items():
            if not Path(ref).is_dir():
                raise UserError(f"--copy-vlm needs model folders, but the {role} is {ref!r}")
        vlm_folders = dict(vlm_refs)
        vlm_refs = {role: f"vlm/{role}" for role in vlm_refs}
    evaluation = read_json(work / "evaluation.json") if (work / "evaluation.json").exists() else None
    subject = f"subj{settings['subject']:02d}"
    provenance = {
        "pipeline": "training/nsd", "work": str(work.path.resolve()), "nsd_root": settings["nsd_root"],
        "subject": subject, "sessions": settings["sessions"], "trials_per_session": prepared["trials_per_session"],
        "normalization": {"mode": settings["normalize"], "beta_scale": settings["beta_scale"],
                          "statistics_from": "training trials only",
                          "then": "repeats of an image averaged (each kept in test/fmri_repeats.npy, float16)"},
        "beta_formats": prepared["beta_formats"], "splits": {"images": prepared["n_images"],
                                                             "trials": prepared["n_trials"],
                                                             "val_fraction": settings["val_fraction"],
                                                             "val_seed": settings["seed"]},
        "extract": extracted["settings"],
        "stage1": {k: v for k, v in work.read_log("fit").items() if k in ("settings", "chosen_alphas")},
        "vertex_voxel": surface_report | {"method": "func1pt8-to-layerB{1,2,3} nearest voxel, equal weight per depth"},
        "stimuli": {"source_size": source_size, "stored_size": list(stimuli.shape[1:3])},
        "weights": weights_report,
    }
    if "stage2" in stages:
        log = work.read_log("contrast")
        provenance["stage2"] = {"settings": log["settings"], "best_epoch": log["best_epoch"],
                                "temperature": log["temperature"]}
    if (work / "roi_table.json").exists():
        provenance["roi_table"] = read_json(work / "roi_table.json")
    manifest = make_manifest(
        name=name or f"NSD {subject}, BLIP-2 ({Path(extracted['settings']['captioner']).name})",
        dataset="nsd", subject=subject,
        n_voxels=int(mask.sum()), n_query=extracted["n_query"], query_dim=extracted["query_dim"],
        text_dim=int(test.texts.shape[1]), stages=stages, vlm={**vlm_refs, **GENERATION},
        synthetic={"scale": 11.0}, provenance=provenance,
        metrics={} if evaluation is None else {"test": evaluation["stages"],
                                               "n_test_images": evaluation["n_test_images"]})
    coco = read_coco_categories(settings["coco_annotations"], {r["coco_split"] for r in test.records},
                                {int(r["coco_id"]) for r in test.records})
    trials = [{"id": f"nsd{r['nsd_id']:05d}", "nsd_id": r["nsd_id"], "coco_id": r["coco_id"],
               "coco_split": r["coco_split"], "repeats": r["repeats"], "trials": r["trials"],
               **({"coco": coco[int(r["coco_id"])]} if int(r["coco_id"]) in coco else {})} for r in test.records]
    rois = {n: {"group": spec["group"], "labels": spec["labels"], "voxels": spec["voxels"]}
            for n, spec in read_json(work / "rois.json").items()}
    from training.nsd.prepare import single_trials

    repeats, repeat_counts = single_trials(work, test.records, prepared["trials_per_session"])
    bundle = write_bundle(out, manifest=manifest, weights=weights, fmri=test.fmri, stimuli=stimuli,
                          fmri_repeats=repeats, repeat_counts=repeat_counts,
                          captions=[r["captions"] for r in test.records], trials=trials,
                          image_embeddings=test.tokens, text_embeddings=test.texts,
                          text_index=test.text_index.tolist(), mesh=mesh, vertex_voxel=vertex_voxel, rois=rois,
                          vlm_folders=vlm_folders, weights_dtype=stored_dtype, overwrite=overwrite)
    from training.nsd.study import add_fsaverage_map

    if not add_fsaverage_map(layout, out, mesh):
        progress("export: no white-to-fsaverage transforms: selections carry over only to subjects on this mesh")
    from brainview.decoding.prediction_cache import add_cache

    bundle, check = add_cache(out)  # every test trial's tokens, so the app ranks them all at once
    progress(f"export: prediction cache of stages {', '.join(check.stages)} (float16), checked on "
             f"{len(check.trials)} trials: largest relative difference {check.max_error:.1e}")
    progress(f"export: wrote {out} ({bundle.n_trials} test images, stages {', '.join(bundle.stages)})")
    return bundle
