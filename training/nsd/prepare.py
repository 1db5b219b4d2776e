"""Step 1: NSD betas → normalized, repeat-averaged patterns per image, split train / val / test.

Reads one session at a time, in blocks of trials, so memory stays far below 8 GB for subject 1:
the largest arrays are the masked int16 cache of one session (750 × 15,724 × 2 B = 24 MB) and the
per-image float32 sums (9,841 × 15,724 × 4 B = 0.6 GB). Every stage writes its result before
the next starts and is skipped when the result is already there, so an interrupted run resumes.

Splits (DESIGN.md §4): test = the shared images (``masterordering <= 1000``); validation = 10 %
of the remaining *images* (seeded), never single trials; all normalization statistics come from
the training split's trials only, so neither validation nor test data shape the model input.

WORK after this step::

    splits.json           nsd ids per split and the seed that drew the validation images
    sessions/session_SS.npy  masked int16 betas of session SS (trials × voxels), nibabel voxel order
    normalization.npz     mean and std per voxel (per session, or pooled), from training trials
    {train,val,test}_fmri.npy   float32 (images × voxels), normalized then averaged over repeats
                          (the test split's single trials are read back at export: :func:`single_trials`)
    stimuli.json          per split, one record per image: nsd_id, coco_id, coco_split, trials, captions
    rois.json             ROI voxel sets in the bundle's layout (DESIGN.md §3)
    voxel_ijk.npy         (voxels × 3) 0-based volume index of each voxel
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainview.errors import UserError
from training.nsd.layout import (BETA_FORMATS, MERGED_ROIS, ROI_LABELS, NsdLayout, WorkDir, progress, read_json,
                                 save_npy, write_json)

NORMALIZATIONS = ("session", "pooled")
BETA_SCALE = 300.0  # NSD stores betas as int16 percent signal change × 300
N_SHARED = 1000  # masterordering values 1..1000 are the shared (test) images
SPLITS = ("train", "val", "test")
TRIAL_BLOCK = 125  # trials read at once from a session file
STD_FLOOR = 1e-6


@dataclass
class Design:
    """NSD's experimental design for one subject: which image each trial showed."""

    masterordering: np.ndarray  # (n_trials,) 1-based index into the subject's 10,000 images
    nsd_ids: np.ndarray  # (n_trials,) 0-based nsdId of each trial's image

    @property
    def is_test(self) -> np.ndarray:
        return self.masterordering <= N_SHARED


def load_design(layout: NsdLayout) -> Design:
    """``nsd_expdesign.mat``: image of trial t = ``subjectim[s-1, masterordering[t]-1] - 1``."""
    from scipy.io import loadmat

    layout.require(layout.expdesign)
    mat = loadmat(layout.expdesign)
    masterordering = np.asarray(mat["masterordering"]).ravel().astype(np.int64)
    subjectim = np.asarray(mat["subjectim"]).astype(np.int64)
    nsd_ids = subjectim[int(layout.subject) - 1, masterordering - 1] - 1
    return Design(masterordering, nsd_ids)


def load_mask(layout: NsdLayout) -> tuple[np.ndarray, np.ndarray]:
    """nsdgeneral voxels (values −1 non-cortex, 0 unlabelled, 1 label): the mask ``> 0`` and each voxel's ijk."""
    import nibabel as nib

    layout.require(layout.nsdgeneral)
    volume = np.asarray(nib.load(layout.nsdgeneral).dataobj)
    mask = volume > 0
    if not mask.any():
        raise UserError(f"{layout.nsdgeneral} labels no voxel (no value > 0)")
    return mask, np.argwhere(mask)  # argwhere is C order over x, y, z: the order of volume[mask]


def available_sessions(layout: NsdLayout) -> int:
    """Number of consecutive sessions from 1 whose betas exist in either format."""
    n = 0
    while any(layout.betas(n + 1, fmt).exists() for fmt in BETA_FORMATS):
        n += 1
    return n


def beta_format(layout: NsdLayout, session: int, wanted: str) -> str:
    if wanted != "auto":
        layout.require(layout.betas(session, wanted))
        return wanted
    # hdf5 first: in NSD's layout (one chunk per voxel) only the mask's voxels are read, about
    # 1.5 % of the file, while a .nii.gz must be decompressed whole (tests/benchmarks/nsd_pipeline.py)
    for fmt in ("hdf5", "nii.gz"):
        if layout.betas(session, fmt).exists():
            return fmt
    raise UserError(f"no betas for session {session} in {layout.betas_dir} (.nii.gz or .hdf5)")


def session_trial_count(layout: NsdLayout, session: int, fmt: str) -> int:
    if fmt == "hdf5":
        import h5py

        with h5py.File(layout.betas(session, fmt), "r") as f:
            return int(f["betas"].shape[0])
    import nibabel as nib

    return int(nib.load(layout.betas(session, fmt)).shape[3])


def _hdf5_masked(data, mask: np.ndarray) -> np.ndarray:
    """(trials, voxels) of the mask's voxels from a (trials, Z, Y, X) dataset, voxels in ``volume[mask]`` order.

    NSD's files are chunked ``(750, 1, 1, 1)``: every voxel's trials are one chunk. Reading runs
    of consecutive mask voxels along X touches only the mask's chunks (15,724 of 699,192 for
    subject 1) instead of every chunk of the volume.
    """
    column = np.full(mask.shape, -1, dtype=np.int64)
    column[mask] = np.arange(int(mask.sum()))
    inside = np.pad(mask.transpose(2, 1, 0), ((0, 0), (0, 0), (1, 1))).astype(np.int8)  # h5py's (Z, Y, X)
    edges = np.diff(inside, axis=2)
    zs, ys, starts = np.nonzero(edges == 1)
    stops = np.nonzero(edges == -1)[2]  # same C order as the starts, so they pair up
    out = np.empty((data.shape[0], int(mask.sum())), dtype=data.dtype)
    for z, y, a, b in zip(zs.tolist(), ys.tolist(), starts.tolist(), stops.tolist()):
        out[:, column[a:b, y, z]] = data[:, z, y, a:b]
    return out


def read_session_betas(layout: NsdLayout, session: int, fmt: str, mask: np.ndarray) -> np.ndarray:
    """Masked betas of one session, int16 (trials, voxels), voxels in nibabel's ``volume[mask]`` order.

    The NIfTI is (X, Y, Z, trials); h5py sees the HDF5 as (trials, Z, Y, X). An HDF5 chunked
    along trials (NSD's one chunk per voxel) is read voxel run by voxel run, touching only the
    mask's chunks; any other HDF5 layout and the NIfTI are read in blocks of trials, each block
    brought to (trials, X, Y, Z) before the same mask selects the same voxels in the same order,
    so a whole session volume (1 GB for subject 1) is never in memory.
    """
    path = layout.betas(session, fmt)
    if fmt == "hdf5":
        import h5py

        with h5py.File(path, "r") as f:
            data = f["betas"]
            expected = tuple(reversed(mask.shape))
            if data.ndim != 4 or tuple(data.shape[1:]) != expected:
                raise UserError(f"{path}: dataset 'betas' has shape {data.shape}, expected (trials, *{expected})")
            if data.chunks is not None and data.chunks[0] >= data.shape[0]:
                blocks = [_hdf5_masked(data, mask)]
            else:
                blocks = [np.asarray(data[s:s + TRIAL_BLOCK]).transpose(0, 3, 2, 1)[:, mask]
                          for s in range(0, data.shape[0], TRIAL_BLOCK)]
    elif fmt == "nii.gz":
        import nibabel as nib

        image = nib.load(path, keep_file_open=True)  # one gzip stream read forward, not reopened per block
        if image.ndim != 4 or tuple(image.shape[:3]) != mask.shape:
            raise UserError(f"{path}: volume shape {image.shape}, expected (*{mask.shape}, trials)")
        blocks = [np.asarray(image.dataobj[..., s:s + TRIAL_BLOCK])[mask].T
                  for s in range(0, image.shape[3], TRIAL_BLOCK)]
    else:
        raise UserError(f"unknown beta format {fmt!r}; choose one of {', '.join(BETA_FORMATS)}")
    out = np.concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]
    return out.astype(np.int16, copy=False) if out.dtype.kind in "iu" else out.astype(np.float32, copy=False)


def split_images(design: Design, n_trials: int, val_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Sorted nsd ids per split. Validation is drawn among training *images*, never trials."""
    ids, test = design.nsd_ids[:n_trials], design.is_test[:n_trials]
    test_ids = np.unique(ids[test])
    train_pool = np.setdiff1d(np.unique(ids[~test]), test_ids)
    if not len(train_pool):
        raise UserError("the chosen sessions hold no training images")
    n_val = min(max(2, int(round(val_fraction * len(train_pool)))), len(train_pool) - 1)  # stage 2 contrasts ≥ 2
    val_ids = np.sort(np.random.default_rng(seed).permutation(train_pool)[:n_val])
    return {"train": np.setdiff1d(train_pool, val_ids), "val": val_ids, "test": test_ids}


def read_stim_info(layout: NsdLayout) -> dict[int, tuple[int, str]]:
    """``nsd_stim_info_merged.csv``: nsdId → (cocoId, cocoSplit)."""
    layout.require(layout.stim_info)
    with open(layout.stim_info, newline="", encoding="utf-8") as f:
        return {int(row["nsdId"]): (int(row["cocoId"]), row["cocoSplit"].strip()) for row in csv.DictReader(f)}


def read_coco_captions(folder: Path, splits: set[str], wanted: set[int]) -> dict[int, list[str]]:
    """COCO ``captions_{split}.json`` → cocoId → its reference captions (in annotation order)."""
    captions: dict[int, list[str]] = {}
    for split in sorted(splits):
        path = folder / f"captions_{split}.json"
        if not path.is_file():
            raise UserError(f"COCO captions {path} not found (give the folder with --coco-annotations)")
        for ann in json.loads(path.read_text(encoding="utf-8"))["annotations"]:
            if int(ann["image_id"]) in wanted:
                captions.setdefault(int(ann["image_id"]), []).append(" ".join(str(ann["caption"]).split()))
    return captions


def roi_label_names(layout: NsdLayout, volume: str) -> dict[int, str]:
    """Label names from the volume's ``.mgz.ctab`` (lines ``value name [r g b a]``), else NSD's documented ones."""
    path = layout.roi_ctab(volume)
    if not path.is_file():
        return dict(ROI_LABELS[volume])
    names = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith("#") and parts[0].lstrip("-").isdigit() and int(parts[0]) > 0:
            names[int(parts[0])] = parts[1]
    return names


def roi_voxel_sets(layout: NsdLayout, mask: np.ndarray) -> tuple[dict[str, dict], dict[str, int]]:
    """Each NSD label and each merged ROI (Table 3) as indices into the nsdgeneral voxel vector.

    Labelled voxels outside nsdgeneral are not in the model's input; their count is reported.
    """
    import nibabel as nib

    rois: dict[str, dict] = {}
    dropped: dict[str, int] = {}
    volumes = {}
    for volume in ROI_LABELS:
        path = layout.roi_volume(volume)
        if not path.exists():
            progress(f"ROI volume {path.name} not found; its ROIs are left out")
            continue
        labels = np.rint(np.asarray(nib.load(path).dataobj)).astype(np.int64)
        if labels.shape != mask.shape:
            raise UserError(f"{path}: shape {labels.shape} differs from nsdgeneral's {mask.shape}")
        volumes[volume] = labels
        dropped[volume] = int(((labels > 0) & ~mask).sum())
        inside = labels[mask]
        for value, name in roi_label_names(layout, volume).items():
            voxels = np.flatnonzero(inside == value)
            if voxels.size:
                rois[name] = {"group": volume, "labels": [value], "voxels": voxels.tolist()}
    for name, (volume, values) in MERGED_ROIS.items():
        if volume in volumes:
            voxels = np.flatnonzero(np.isin(volumes[volume][mask], values))
            if voxels.size:
                rois[name] = {"group": volume, "labels": list(values), "voxels": voxels.tolist()}
    return rois, dropped


def _train_rows(session_trials: np.ndarray, design: Design, train_ids: np.ndarray) -> np.ndarray:
    return np.isin(design.nsd_ids[session_trials], train_ids)


def normalization_stats(work: WorkDir, design: Design, n_sessions: int, per_session: int, train_ids: np.ndarray,
                        mode: str) -> dict[str, np.ndarray]:
    """Per-voxel mean and std of betas/300 over the *training* trials: per session, or pooled over sessions."""
    count, total, total_sq = 0, 0.0, 0.0
    means, stds = [], []
    for s in range(1, n_sessions + 1):
        trials = np.arange((s - 1) * per_session, s * per_session)
        rows = _train_rows(trials, design, train_ids)
        if not rows.any():
            raise UserError(f"session {s} has no training trial to take normalization statistics from")
        x = np.load(work / f"sessions/session_{s:02d}.npy", mmap_mode="r")[rows].astype(np.float64) / BETA_SCALE
        if mode == "session":
            means.append(x.mean(0))
            stds.append(x.std(0))
        else:
            count += len(x)
            total = total + x.sum(0)
            total_sq = total_sq + (x ** 2).sum(0)
    if mode == "pooled":
        mean = total / count
        means, stds = [mean], [np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))]
    std = np.maximum(np.asarray(stds), STD_FLOOR)
    return {"mean": np.asarray(means, dtype=np.float32), "std": std.astype(np.float32)}


def average_repeats(work: WorkDir, design: Design, n_sessions: int, per_session: int,
                    split_ids: dict[str, np.ndarray], stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Normalize every trial, then average the trials of each image; float32 (images, voxels) per split."""
    import scipy.sparse as sp

    ordered = np.concatenate([split_ids[s] for s in SPLITS])
    row_of = {int(i): r for r, i in enumerate(ordered)}
    n_vox = stats["mean"].shape[1]
    sums = np.zeros((len(ordered), n_vox), dtype=np.float32)
    counts = np.zeros(len(ordered), dtype=np.int64)
    for s in range(1, n_sessions + 1):
        trials = np.arange((s - 1) * per_session, s * per_session)
        k = s - 1 if len(stats["mean"]) > 1 else 0
        z = (np.load(work / f"sessions/session_{s:02d}.npy", mmap_mode="r").astype(np.float32) / BETA_SCALE
             - stats["mean"][k]) / stats["std"][k]
        rows = np.array([row_of[int(i)] for i in design.nsd_ids[trials]])
        present, inverse = np.unique(rows, return_inverse=True)
        onehot = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (inverse, np.arange(len(rows)))),
                               shape=(len(present), len(rows)))
        sums[present] += onehot @ z
        np.add.at(counts, rows, 1)
        progress(f"averaged session {s}/{n_sessions}")
    sums /= counts[:, None]
    out, start = {}, 0
    for split in SPLITS:
        out[split] = sums[start:start + len(split_ids[split])]
        start += len(split_ids[split])
    return out


def single_trials(work: WorkDir, records: list[dict], per_session: int) -> tuple[np.ndarray, np.ndarray]:
    """Every trial of each image of ``records`` (``stimuli.json``), normalized as :func:`average_repeats`
    normalizes it but not averaged: float16 (images, most repeats, voxels) in the order they were shown,
    and the number of trials per image (NSD's test images: mostly 3). Their mean is the split's fMRI.
    Reads the masked session cache and the training statistics step 1 saved."""
    stats = np.load(work / "normalization.npz")
    mean, std = stats["mean"], stats["std"]
    counts = np.array([len(r["trials"]) for r in records], dtype=np.int64)
    out = np.zeros((len(records), int(counts.max()), mean.shape[1]), dtype=np.float16)
    sessions: dict[int, np.ndarray] = {}
    for i, record in enumerate(records):
        for j, trial in enumerate(sorted(record["trials"])):
            session, row = divmod(int(trial), per_session)
            if session not in sessions:
                sessions[session] = np.load(work / f"sessions/session_{session + 1:02d}.npy", mmap_mode="r")
            k = session if len(mean) > 1 else 0
            out[i, j] = (sessions[session][row].astype(np.float32) / BETA_SCALE - mean[k]) / std[k]
    return out, counts


def prepare(nsd_root: str | Path, subject: int, out: str | Path, *, sessions: int | None = None,
            normalize: str = "session", val_fraction: float = 0.1, seed: int = 0, beta_format_choice: str = "auto",
            coco_annotations: str | Path | None = None) -> WorkDir:
    """Run step 1 into ``out``; rerunning with the same settings skips what is done."""
    if normalize not in NORMALIZATIONS:
        raise UserError(f"--normalize must be one of {', '.join(NORMALIZATIONS)}, not {normalize!r}")
    if not 0 < val_fraction < 1:
        raise UserError(f"--val-fraction must be in (0, 1): model selection needs validation images, not {val_fraction}")
    layout = NsdLayout(Path(nsd_root), subject)
    work = WorkDir(out)
    work.path.mkdir(parents=True, exist_ok=True)
    n_available = available_sessions(layout)
    if n_available == 0:
        raise UserError(f"no betas found: expected {layout.betas(1, 'nii.gz')} or {layout.betas(1, 'hdf5')}")
    n_sessions = n_available if sessions is None else int(sessions)
    if n_sessions < 1 or n_sessions > n_available:
        raise UserError(f"asked for {n_sessions} sessions but {layout.betas_dir} has betas for sessions 1..{n_available}")
    settings = {"nsd_root": str(layout.root.resolve()), "subject": int(subject), "sessions": n_sessions,
                "normalize": normalize, "val_fraction": val_fraction, "seed": seed,
                "beta_format": beta_format_choice, "beta_scale": BETA_SCALE,
                "coco_annotations": str(Path(coco_annotations or layout.coco_annotations).resolve())}
    if work.log_path("prepare").is_file():
        previous = work.read_log("prepare")["settings"]
        if previous == settings:
            progress(f"prepare: {work.path} is complete, nothing to do")
            return work
        raise UserError(f"{work.path} was prepared with other settings ({previous}); use a new work folder")
    started = work / "logs/prepare.started.json"
    if started.is_file() and read_json(started) != settings:
        raise UserError(f"{work.path} holds an unfinished prepare with other settings ({read_json(started)}); "
                        "rerun it with those settings or use a new work folder")
    write_json(started, settings)

    design = load_design(layout)
    mask, ijk = load_mask(layout)
    save_npy(work / "voxel_ijk.npy", ijk.astype(np.int16))
    formats = [beta_format(layout, s, beta_format_choice) for s in range(1, n_sessions + 1)]
    per_session = session_trial_count(layout, 1, formats[0])
    n_trials = n_sessions * per_session
    if len(design.masterordering) < n_trials:
        raise UserError(f"{layout.expdesign} orders {len(design.masterordering)} trials, fewer than "
                        f"{n_sessions} sessions × {per_session} trials")
    progress(f"prepare {layout.subj}: {n_sessions} sessions × {per_session} trials, {int(mask.sum())} voxels")

    split_ids = split_images(design, n_trials, val_fraction, seed)
    write_json(work / "splits.json", {s: split_ids[s].tolist() for s in SPLITS} | {
        "rule": "test = shared images (masterordering <= 1000); val = fraction of training images", "seed": seed})

    for s, fmt in zip(range(1, n_sessions + 1), formats):
        target = work / f"sessions/session_{s:02d}.npy"
        if target.exists():
            continue
        betas = read_session_betas(layout, s, fmt, mask)
        if len(betas) != per_session:
            raise UserError(f"{layout.betas(s, fmt)} has {len(betas)} trials, expected {per_session}")
        save_npy(target, betas)
        progress(f"masked session {s}/{n_sessions} ({fmt})")

    stats = normalization_stats(work, design, n_sessions, per_session, split_ids["train"], normalize)
    np.savez(work / "normalization.npz", mode=np.array(normalize), **stats)
    averaged = average_repeats(work, design, n_sessions, per_session, split_ids, stats)
    for split in SPLITS:
        save_npy(work / f"{split}_fmri.npy", averaged[split])

    stim_info = read_stim_info(layout)
    used = np.concatenate([split_ids[s] for s in SPLITS])
    missing = [int(i) for i in used if int(i) not in stim_info]
    if missing:
        raise UserError(f"{layout.stim_info} has no row for nsdId {missing[:5]}")
    coco = read_coco_captions(Path(settings["coco_annotations"]), {stim_info[int(i)][1] for i in used},
                              {stim_info[int(i)][0] for i in used})
    trials_of: dict[int, list[int]] = {}
    for t in range(n_trials):
        trials_of.setdefault(int(design.nsd_ids[t]), []).append(t)
    records = {}
    for split in SPLITS:
        records[split] = []
        for nsd_id in split_ids[split]:
            coco_id, coco_split = stim_info[int(nsd_id)]
            if coco_id not in coco:
                raise UserError(f"no COCO caption for cocoId {coco_id} (nsdId {int(nsd_id)}) in {coco_split}")
            records[split].append({"nsd_id": int(nsd_id), "coco_id": coco_id, "coco_split": coco_split,
                                   "trials": trials_of[int(nsd_id)], "repeats": len(trials_of[int(nsd_id)]),
                                   "captions": coco[coco_id]})
    write_json(work / "stimuli.json", records)

    rois, dropped = roi_voxel_sets(layout, mask)
    write_json(work / "rois.json", rois)
    work.write_log("prepare", settings, n_voxels=int(mask.sum()), trials_per_session=per_session,
                   beta_formats=sorted(set(formats)),
                   n_images={s: len(split_ids[s]) for s in SPLITS},
                   n_trials={s: int(sum(len(r["trials"]) for r in records[s])) for s in SPLITS},
                   roi_voxels={k: len(v["voxels"]) for k, v in rois.items()}, roi_voxels_outside_nsdgeneral=dropped)
    progress(f"prepare: done, {', '.join(f'{s} {len(split_ids[s])}' for s in SPLITS)} images")
    return work

