"""The NSD pipeline at full subject-1 size on synthetic data: time and peak memory of every CPU step.

Builds, under ``--root`` (default ``/tmp/nsd_pipeline_bench``), an NSD tree of subject-1 size in
the real formats and layouts (training/nsd/layout.py): an 81 × 104 × 83 volume with 15,724
nsdgeneral voxels, betas of 750 trials per session as ``.nii.gz`` and as ``.hdf5`` chunked
``(750, 1, 1, 1)`` in h5py's (trials, Z, Y, X) order as NSD's files are, a design of 40 sessions
(30,000 trials, 10,000 images shown 3 times, the first 1,000 of them the shared test images),
``nsd_stim_info_merged.csv`` with 73,000 rows, COCO-size caption files (118,287 + 5,000 images,
5 captions each), an ``imgBrick`` of 73,000 × 425² (only the test images' chunks written),
FreeSurfer surfaces of 163,842 vertices per hemisphere and their layer transforms.

One session's betas are written once per format and hard-linked as sessions 2..40 (2.1 GB of
disk instead of 84 GB), so every read after the first is from a warm page cache: the per-session
figures are measured on session 1 right after writing it, i.e. warm too. ``extract`` needs the
real BLIP-2 models and a GPU, so its outputs are synthetic here (query tokens a low-rank linear
function of the patterns plus noise, unit caption embeddings); ``contrast`` is replaced by a
stand-in stage 2 (stage 1 perturbed) so that ``export`` writes and ``brainview info`` reads a
bundle with both stages, as a real run makes.

Each step runs as its own process (the pipeline's CLI, as a user runs it) and its peak resident
memory is that process's ``ru_maxrss`` (``os.wait4``). Results are printed and written to
``ROOT/results.json``.

    .venv/bin/python tests/benchmarks/nsd_pipeline.py                 # everything (≈ 30 min, 6 GB of disk)
    .venv/bin/python tests/benchmarks/nsd_pipeline.py --steps fit     # one step again (the inputs are kept)
    .venv/bin/python tests/benchmarks/nsd_pipeline.py --scale 0.1     # a tenth of the voxels and images, quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from training.nsd.layout import ROI_LABELS, NsdLayout, write_json  # noqa: E402

VOLUME = (81, 104, 83)  # subject 1, func1pt8mm
N_VOXELS = 15724
TRIALS_PER_SESSION = 750
N_IMAGES, N_SHARED, REPEATS = 10000, 1000, 3
N_QUERY, QUERY_DIM, TEXT_DIM = 32, 768, 256
COCO_IMAGES = {"train2017": 118287, "val2017": 5000}
IMAGE_SIZE = 425
ICO_SUBDIVISIONS = 7  # 163,842 vertices per hemisphere (subject 1's native surfaces have about 227,000)
STEPS = ("build", "read", "prepare", "targets", "fit", "export", "info", "precision")
WORDS = ("a man woman dog cat bus train plate pizza street field table room kitchen sign water boat "
         "red blue white green large small two people sitting standing riding next to on with of in").split()


# Runs the command and reports its ru_maxrss. A process forked from this benchmark would start
# with the benchmark's resident pages counted in its high-water mark; one forked from this small
# launcher starts near zero, so the figure is the step's own.
_LAUNCHER = ("import json, os, subprocess, sys; p = subprocess.Popen(sys.argv[1:]); _, s, u = os.wait4(p.pid, 0); "
             "print(json.dumps({'rc': os.waitstatus_to_exitcode(s), 'maxrss_kb': u.ru_maxrss}), file=sys.stderr)")


def peak_of(command: list[str], log: Path) -> dict:
    """Run ``command``; its wall time and peak resident memory (its own, not the benchmark's)."""
    start = time.perf_counter()
    with open(log, "w") as out:
        subprocess.run([sys.executable, "-c", _LAUNCHER, *command], stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}, check=False)
    seconds = time.perf_counter() - start
    report = json.loads(log.read_text().strip().splitlines()[-1])
    if report["rc"] != 0:
        raise SystemExit(f"{' '.join(command)} failed; see {log}:\n{log.read_text()[-2000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_gb": round(report["maxrss_kb"] / 2 ** 20, 3), "log": str(log)}


# ---------------------------------------------------------------- the synthetic NSD tree


def _mask(rng, n_voxels: int) -> np.ndarray:
    """nsdgeneral-like: the ``n_voxels`` highest voxels of a smooth random field in the back of a brain-shaped ellipsoid."""
    from scipy.ndimage import gaussian_filter

    x, y, z = np.indices(VOLUME)
    c = (np.array(VOLUME) - 1) / 2
    brain = ((x - c[0]) / 36) ** 2 + ((y - c[1]) / 48) ** 2 + ((z - c[2]) / 38) ** 2 <= 1
    field = gaussian_filter(rng.standard_normal(VOLUME), 2.5) - 0.02 * y  # posterior (low y) favoured
    field[~brain] = -np.inf
    chosen = np.zeros(VOLUME, bool)
    chosen.flat[np.argsort(field, axis=None)[-n_voxels:]] = True
    labels = np.where(brain, 0, -1).astype(np.int16)
    labels[chosen] = 1
    return labels


def _write_nifti(path: Path, data: np.ndarray) -> None:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(data, np.diag([1.8, 1.8, 1.8, 1.0]))
    image.set_data_dtype(data.dtype)
    nib.save(image, path)


def _betas(rng, general: np.ndarray) -> np.ndarray:
    """(X, Y, Z, trials) int16: betas × 300 inside the brain, 0 outside (as NSD's)."""
    brain = general >= 0
    betas = np.zeros((*VOLUME, TRIALS_PER_SESSION), dtype=np.int16)
    inside = np.argwhere(brain)
    for start in range(0, len(inside), 50000):
        a, b, c = inside[start:start + 50000].T
        betas[a, b, c] = (rng.standard_normal((len(a), TRIALS_PER_SESSION), dtype=np.float32) * 300).astype(np.int16)
    return betas


def build(root: Path, n_voxels: int, n_images: int, n_sessions: int, seed: int = 0) -> None:
    import h5py
    from nibabel.freesurfer import write_geometry, write_morph_data
    from scipy.io import savemat

    from tests.factories import icosphere

    rng = np.random.default_rng(seed)
    layout = NsdLayout(root, 1)
    n_shared = min(1000, n_images // 10)
    per_session = n_images * REPEATS // n_sessions
    # design: each image 3 times in a random order; masterordering <= 1000 are the shared images
    columns = np.r_[1:n_shared + 1, 1001:1001 + n_images - n_shared]  # 1-based columns of subjectim shown
    order = rng.permutation(np.repeat(columns, REPEATS))
    subjectim = np.tile(rng.permutation(73000)[:10000] + 1, (8, 1))
    nsd_of_column = subjectim[0, columns - 1] - 1  # 0-based nsdId of each shown image, shared ones first
    layout.expdesign.parent.mkdir(parents=True, exist_ok=True)
    savemat(layout.expdesign, {"masterordering": order[None].astype(np.float64), "subjectim": subjectim.astype(np.float64),
                               "sharedix": (nsd_of_column[:n_shared] + 1)[None].astype(np.float64)})

    general = _mask(rng, n_voxels)
    _write_nifti(layout.nsdgeneral, general)
    voxels = np.argwhere(general > 0)
    for k, (volume, names) in enumerate(ROI_LABELS.items()):
        labels = np.where(general < 0, -1, 0).astype(np.int16)
        pick = voxels[rng.permutation(len(voxels))[: len(voxels) // 8]]
        labels[tuple(pick.T)] = 1 + np.arange(len(pick)) % len(names)
        _write_nifti(layout.roi_volume(volume), labels)

    betas = _betas(rng, general)
    layout.betas_dir.mkdir(parents=True, exist_ok=True)
    first = {fmt: layout.betas(1, fmt) for fmt in ("nii.gz", "hdf5")}
    start = time.perf_counter()
    _write_nifti(first["nii.gz"], betas)
    print(f"build: wrote {first['nii.gz'].name} ({first['nii.gz'].stat().st_size / 1e9:.2f} GB) "
          f"in {time.perf_counter() - start:.0f} s", flush=True)
    start = time.perf_counter()
    with h5py.File(first["hdf5"], "w") as f:  # h5py sees (trials, Z, Y, X); one chunk per voxel
        f.create_dataset("betas", data=betas.transpose(3, 2, 1, 0), chunks=(TRIALS_PER_SESSION, 1, 1, 1))
    print(f"build: wrote {first['hdf5'].name} ({first['hdf5'].stat().st_size / 1e9:.2f} GB) "
          f"in {time.perf_counter() - start:.0f} s", flush=True)
    del betas
    if per_session != TRIALS_PER_SESSION:
        raise SystemExit(f"{n_images} images × {REPEATS} make {per_session} trials per session, not {TRIALS_PER_SESSION}")
    for s in range(2, n_sessions + 1):
        for fmt, path in first.items():
            os.link(path, layout.betas(s, fmt))

    shared = set(nsd_of_column[:n_shared].tolist())
    coco_of = {int(nsd): 100000 + 3 * i for i, nsd in enumerate(nsd_of_column)}  # COCO ids of the subject's images
    split_of = {int(nsd): ("val2017" if i % 25 == 0 else "train2017") for i, nsd in enumerate(nsd_of_column)}
    with open(layout.stim_info, "w", encoding="utf-8") as f:
        f.write(",cocoId,cocoSplit,cropBox,loss,nsdId,flagged,BOLD5000,shared1000\n")
        for nsd in range(73000):
            f.write(f"{nsd},{coco_of.get(nsd, 900000 + nsd)},{split_of.get(nsd, 'train2017')},"
                    f"\"(0, 0, 0.1, 0.1)\",0.0,{nsd},False,False,{nsd in shared}\n")
    layout.coco_annotations.mkdir(parents=True, exist_ok=True)
    words = np.array(WORDS)
    ann_id = 0
    for split, n_coco in COCO_IMAGES.items():
        ids = sorted({c for n, c in coco_of.items() if split_of[n] == split}
                     | set(range(10 ** 6, 10 ** 6 + max(0, n_coco - sum(1 for s in split_of.values() if s == split)))))
        annotations = []
        for image_id in ids:
            for _ in range(5):
                ann_id += 1
                annotations.append({"image_id": image_id, "id": ann_id,
                                    "caption": " ".join(words[rng.integers(0, len(words), 10)]).capitalize() + "."})
        (layout.coco_annotations / f"captions_{split}.json").write_text(json.dumps(
            {"info": {}, "licenses": [], "images": [{"id": i} for i in ids], "annotations": annotations}))

    layout.stimuli.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(layout.stimuli, "w") as f:  # full shape; only the test images' chunks are allocated
        brick = f.create_dataset("imgBrick", shape=(73000, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8,
                                 chunks=(1, IMAGE_SIZE, IMAGE_SIZE, 3))
        for nsd in sorted(shared):
            brick[nsd] = rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)

    import nibabel as nib

    unit, faces = icosphere(ICO_SUBDIVISIONS, 1.0)
    centre = (np.array(VOLUME) - 1) / 2
    for side, hemi in ((-1, "lh"), (1, "rh")):
        surf = layout.surface(hemi, "pial").parent
        surf.mkdir(parents=True, exist_ok=True)
        write_geometry(str(layout.surface(hemi, "pial")), unit * 60 + [side * 30, 0, 0], faces)
        write_geometry(str(layout.surface(hemi, "inflated")), unit * 70 + [side * 75, 0, 0], faces)
        write_morph_data(str(layout.surface(hemi, "sulc")), rng.standard_normal(len(unit)).astype(np.float32))
        for layer, radius in zip((1, 2, 3), (0.30, 0.33, 0.36)):
            coords = centre + [side * 12, 0, 0] + unit * np.array(VOLUME) * radius + 1.0  # 1-based voxel coordinates
            path = layout.layer_transform(hemi, layer)
            path.parent.mkdir(parents=True, exist_ok=True)
            nib.MGHImage(coords.astype(np.float32).reshape(len(unit), 1, 1, 3), np.eye(4)).to_filename(path)
    write_json(root / "built.json", {"n_voxels": n_voxels, "n_images": n_images, "sessions": n_sessions})


# ---------------------------------------------------------------- stand-ins for the GPU steps


def targets(work: Path, seed: int = 1) -> None:
    """Synthetic ``extract`` outputs: tokens a rank-64 linear function of the patterns plus noise."""
    from numpy.lib.format import open_memmap

    from training.nsd.data import image_records
    from training.nsd.layout import WorkDir

    rng = np.random.default_rng(seed)
    w = WorkDir(work)
    records = image_records(w)
    fmri = np.concatenate([np.load(work / f"{s}_fmri.npy", mmap_mode="r") for s in ("train", "val", "test")])
    a = rng.standard_normal((fmri.shape[1], 64)).astype(np.float32) / np.sqrt(fmri.shape[1])
    b = rng.standard_normal((64, N_QUERY * QUERY_DIM)).astype(np.float32)
    tokens = open_memmap(work / "image_tokens.npy", mode="w+", dtype=np.float32, shape=(len(records), N_QUERY, QUERY_DIM))
    for start in range(0, len(records), 1000):
        x = np.asarray(fmri[start:start + 1000], dtype=np.float32)
        tokens[start:start + len(x)] = ((x @ a) @ b + rng.standard_normal((len(x), N_QUERY * QUERY_DIM), dtype=np.float32)
                                        ).reshape(len(x), N_QUERY, QUERY_DIM)
    tokens.flush()
    del tokens
    index = [[row, j] for row, r in enumerate(records) for j in range(len(r["captions"]))]
    texts = rng.standard_normal((len(index), TEXT_DIM)).astype(np.float32)
    np.save(work / "text_embeddings.npy", texts / np.linalg.norm(texts, axis=1, keepdims=True))
    write_json(work / "text_index.json", index)
    w.write_log("extract", {"captioner": "Salesforce/blip2-opt-2.7b", "retrieval": "Salesforce/blip2-itm-vit-g",
                            "chunk_size": 256}, synthetic=True, n_images=len(records), n_texts=len(index),
                n_query=N_QUERY, query_dim=QUERY_DIM, text_dim=TEXT_DIM)


def stand_in_stage2(work: Path, seed: int = 2) -> None:
    """A stage-2 file of the real size (stage 1 perturbed, a text projection) and its log, block by block."""
    from safetensors import safe_open

    from training.nsd.fit import SafetensorsWriter
    from training.nsd.layout import WorkDir

    rng = np.random.default_rng(seed)
    with safe_open(str(work / "stage1.safetensors"), "numpy") as f:
        weight = f.get_slice("stage1.weight")
        n_out, n_vox = weight.get_shape()
        writer = SafetensorsWriter(work / "stage2.safetensors", {
            "stage2.weight": ((n_out, n_vox), np.float32), "stage2.bias": ((n_out,), np.float32),
            "stage2.projection.weight": ((TEXT_DIM, QUERY_DIM), np.float32),
            "stage2.projection.bias": ((TEXT_DIM,), np.float32)})
        for start in range(0, n_out, 2048):
            rows = weight[start:start + 2048]
            writer.write("stage2.weight", start, rows * (1 + 0.05 * rng.standard_normal(rows.shape, dtype=np.float32)))
        writer.write("stage2.bias", 0, f.get_tensor("stage1.bias"))
    writer.write("stage2.projection.weight", 0, rng.standard_normal((TEXT_DIM, QUERY_DIM), dtype=np.float32) / 28)
    writer.write("stage2.projection.bias", 0, np.zeros(TEXT_DIM, np.float32))
    writer.close()
    WorkDir(work).write_log("contrast", {"synthetic": "stage 1 perturbed, for the export benchmark"},
                            best_epoch=0, temperature=0.07, history=[])


# ---------------------------------------------------------------- precision of the solver


#: the ridge before the memory work of issue 14 (float64 copies of everything), for the comparison
REFERENCE_RIDGE = "ce95d00:brainview/decoding/ridge.py"


def _reference_ridge():
    """``StageOneRidge`` as it was at ``REFERENCE_RIDGE`` (from git history), or None outside a clone."""
    import importlib.util
    import tempfile

    try:
        source = subprocess.run(["git", "show", REFERENCE_RIDGE], cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "reference_ridge.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("reference_ridge", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.StageOneRidge


def precision(work: Path, n_tokens: int = 4) -> dict:
    """The shipped solver (float64 on the CPU, float32 as on a GPU) against the reference, on the full patterns.

    The solve's conditioning depends on the patterns and alphas only (each output is its own
    right-hand side), so ``n_tokens`` tokens' outputs show the precision of the full fit while
    the reference's float64 copies stay affordable.
    """
    import gc

    import torch

    from brainview.decoding.ridge import StageOneRidge

    X, Xv = np.load(work / "train_fmri.npy"), np.load(work / "val_fmri.npy")
    tokens = np.load(work / "image_tokens.npy", mmap_mode="r")
    Y, Yv = np.array(tokens[:len(X), :n_tokens]), np.array(tokens[len(X):len(X) + len(Xv), :n_tokens])
    candidates = {"float64": lambda: StageOneRidge(device="cpu", dtype=torch.float64),
                  "float32": lambda: StageOneRidge(device="cpu", dtype=torch.float32)}
    reference = _reference_ridge()
    if reference is not None:
        candidates["reference"] = lambda: reference(device="cpu")
    out, predictions, alphas = {"outputs": int(np.prod(Y.shape[1:])), "n_train": len(X)}, {}, {}
    for name, make in candidates.items():
        start = time.perf_counter()
        model = make().fit(X, Y, Xv, Yv)
        out[f"{name}_seconds"] = round(time.perf_counter() - start, 1)
        predictions[name], alphas[name] = model.predict(Xv), model.alpha_
        del model
        gc.collect()
    base = "reference" if reference is not None else "float64"
    for name in predictions:
        if name == base:
            continue
        diff = predictions[name] - predictions[base]
        out[f"{name}_vs_{base}"] = {
            "max_abs_diff_over_max_abs": float(np.abs(diff).max() / np.abs(predictions[base]).max()),
            "diff_norm_over_norm": float(np.linalg.norm(diff) / np.linalg.norm(predictions[base])),
            "same_alphas": bool(np.array_equal(alphas[name], alphas[base]))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/nsd_pipeline_bench"))
    parser.add_argument("--steps", default=",".join(STEPS[:-1]), help=f"comma-separated, of {', '.join(STEPS)}")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 15,724 voxels (quick runs)")
    parser.add_argument("--sessions", type=int, default=40)
    args = parser.parse_args()
    steps = args.steps.split(",")
    unknown = set(steps) - set(STEPS)
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}")
    root, py = args.root, sys.executable
    nsd, work, bundle = root / "nsd", root / "work", root / "bundle"
    n_voxels = int(N_VOXELS * args.scale)
    n_images = args.sessions * TRIALS_PER_SESSION // REPEATS  # 10,000 for 40 sessions
    results_path = root / "results.json"
    root.mkdir(parents=True, exist_ok=True)
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    logs = root / "logs"
    logs.mkdir(exist_ok=True)

    def record(name, value):
        results[name] = value
        results_path.write_text(json.dumps(results, indent=1) + "\n")
        print(f"{name}: {json.dumps(value)}", flush=True)

    if "build" in steps:
        if (root / "built.json").exists():
            print(f"build: {nsd} exists ({(root / 'built.json').read_text().strip()})")
        else:
            start = time.perf_counter()
            build(nsd, n_voxels, n_images, args.sessions)
            record("build", {"seconds": round(time.perf_counter() - start, 1)})
    if "read" in steps:  # one session, each format
        mask_code = ("from training.nsd.layout import NsdLayout; from training.nsd.prepare import load_mask, "
                     "read_session_betas as r; L = NsdLayout('{}', 1); m, _ = load_mask(L); b = r(L, 1, '{}', m); "
                     "print(b.shape, b.dtype)")
        for fmt in ("hdf5", "nii.gz"):
            record(f"read_one_session_{fmt}", peak_of([py, "-c", mask_code.format(nsd, fmt)], logs / f"read_{fmt}.log"))
    if "prepare" in steps:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        record(f"prepare_{args.sessions}_sessions_hdf5", peak_of(
            [py, "-m", "training.nsd", "prepare", str(nsd), "--subject", "1", "--out", str(work),
             "--beta-format", "hdf5"], logs / "prepare.log"))
        results["prepare_images"] = json.loads((work / "logs/prepare.json").read_text())["n_images"]
    if "targets" in steps:
        start = time.perf_counter()
        targets(work)
        record("synthetic_extract_outputs", {"seconds": round(time.perf_counter() - start, 1)})
    if "fit" in steps:
        for name in ("stage1.safetensors", "stage2.safetensors", "logs/fit.json", "logs/contrast.json"):
            (work / name).unlink(missing_ok=True)
        record("fit", peak_of([py, "-m", "training.nsd", "fit", str(work), "--device", "cpu"], logs / "fit.log")
               | {"n_train": results.get("prepare_images", {}).get("train"),
                  "n_val": results.get("prepare_images", {}).get("val")})
        stand_in_stage2(work)
    if "export" in steps:
        record("export", peak_of([py, "-m", "training.nsd", "export", str(work), "--out", str(bundle), "--overwrite"],
                                 logs / "export.log"))
        manifest = json.loads((bundle / "manifest.json").read_text())
        record("export_weights", manifest["provenance"]["weights"])
        record("bundle_gb", round(sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file()) / 1e9, 3))
    if "info" in steps:
        record("brainview_info", peak_of([py, "-m", "brainview", "info", str(bundle)], logs / "info.log"))
    if "precision" in steps:
        record("precision", precision(work))
    record("disk_gb", {name: round(sum(p.stat().st_size for p in (root / name).rglob("*") if p.is_file()) / 1e9, 3)
                       for name in ("work",) if (root / name).exists()})


if __name__ == "__main__":
    main()
