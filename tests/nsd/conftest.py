"""A tiny Natural Scenes Dataset tree in the real file formats and at the real paths.

Everything the NSD pipeline reads is written with the library NSD's own files are read with:
betas as NIfTI (X, Y, Z, trials) int16 *and* HDF5 (dataset ``betas``, (trials, Z, Y, X), chunked
``(trials, 1, 1, 1)`` as NSD's own files),
nsdgeneral and ROI volumes with NSD's label values, ``.mgz.ctab`` label tables,
``nsd_expdesign.mat`` (scipy ``savemat``, 1-based), ``nsd_stim_info_merged.csv``,
``nsd_stimuli.hdf5`` (``imgBrick``), COCO caption JSON, FreeSurfer surfaces and the
``func1pt8-to-layerB{1,2,3}.mgz`` transforms (1-based voxel coordinates per vertex, 9999 invalid).
Only the sizes are tiny: a (14, 11, 9) volume, 4 sessions of 20 trials, 6 shared test images.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.factories import icosphere
from training.nsd.layout import ROI_LABELS, NsdLayout

VOLUME = (14, 11, 9)  # X, Y, Z: all different, so a transposition error cannot hide
N_SESSIONS, TRIALS_PER_SESSION = 4, 20
N_STIMULI = 40  # images in the tiny imgBrick
STIMULUS_SIZE = 40
SUBJECT = 1
WORDS = {  # a caption vocabulary per image "theme", so captions differ between images
    0: "a man riding a wave on a surfboard", 1: "a zebra standing in a grassy field",
    2: "a red bus parked on a city street", 3: "a kitchen with a stove and a sink",
    4: "a stop sign next to a brick building", 5: "a cat sleeping on a wooden bench",
    6: "two people playing tennis on a court", 7: "a plate of food with broccoli",
}


@dataclass
class TinyNsd:
    root: Path
    layout: NsdLayout
    test_ids: set  # nsd ids of the shared images shown to the subject
    train_ids: set  # nsd ids of the other images shown
    mask: np.ndarray


def _design(rng: np.random.Generator):
    """masterordering for 80 trials: 6 shared images × 3, 16 images × 3, 7 images × 2 (1-based)."""
    shared_columns = np.arange(1, 7)  # masterordering <= 1000: shared
    other_columns = np.arange(1001, 1024)
    order = np.concatenate([np.repeat(shared_columns, 3), np.repeat(other_columns[:16], 3),
                            np.repeat(other_columns[16:], 2)])
    order = rng.permutation(order)
    assert len(order) == N_SESSIONS * TRIALS_PER_SESSION
    subjectim = rng.integers(1, N_STIMULI + 1, size=(8, 10000))  # unused columns: any valid image
    nsd_ids = rng.permutation(N_STIMULI)[: len(shared_columns) + len(other_columns)] + 1  # 1-based, distinct
    subjectim[SUBJECT - 1, shared_columns - 1] = nsd_ids[: len(shared_columns)]
    subjectim[SUBJECT - 1, other_columns - 1] = nsd_ids[len(shared_columns):]
    sharedix = np.concatenate([nsd_ids[: len(shared_columns)], np.arange(994) + 100000])
    return order, subjectim, sharedix


def _mask_and_rois(rng: np.random.Generator):
    x, y, z = np.indices(VOLUME)
    general = np.zeros(VOLUME, dtype=np.int16)
    centers = [(3.5, 5.0, 4.0), (10.0, 5.0, 4.0)]
    for cx, cy, cz in centers:
        d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2)
        general[(d <= 3.3) & (y >= 3)] = 1
    general[(general == 0) & (z == 0)] = -1  # non-cortex
    rois = {}
    for k, volume in enumerate(ROI_LABELS):
        labels = np.where(general == -1, -1, 0).astype(np.int16)
        n_labels = len(ROI_LABELS[volume])
        inside, outside = np.argwhere(general == 1), np.argwhere(general == 0)
        pick = np.concatenate([inside[rng.choice(len(inside), size=5 * n_labels, replace=False)],
                               outside[rng.choice(len(outside), size=n_labels, replace=False)]])
        for i, (a, b, c) in enumerate(pick):
            labels[a, b, c] = 1 + i % n_labels
        rois[volume] = labels
    return general, rois


def _write_nifti(path: Path, data: np.ndarray) -> None:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag([1.8, 1.8, 1.8, 1.0])
    image = nib.Nifti1Image(data, affine)
    image.set_data_dtype(data.dtype)
    nib.save(image, path)


def _captions(rng: np.random.Generator, coco_ids: dict[int, str]):
    by_split = {"train2017": [], "val2017": []}
    ann_id = 1
    for coco_id, split in coco_ids.items():
        base = WORDS[coco_id % len(WORDS)]
        for j in range(5 + coco_id % 2):  # COCO images have 5 or 6 captions
            variant = base if j == 0 else f"{base} {['today', 'outside', 'in the sun', 'nearby', 'here', 'now'][j]}"
            by_split[split].append({"image_id": coco_id, "id": ann_id, "caption": f" {variant.capitalize()}. "})
            ann_id += 1
    return by_split


FSAVERAGE_VERTICES = 30


def _surfaces(layout: NsdLayout, rng: np.random.Generator) -> None:
    import nibabel as nib
    from nibabel.freesurfer import write_geometry, write_morph_data

    centers = {"lh": np.array([3.5, 5.0, 4.0]), "rh": np.array([10.0, 5.0, 4.0])}
    for hemi in ("lh", "rh"):
        unit, faces = icosphere(1, 1.0)
        n = len(unit)
        surf_dir = layout.surface(hemi, "pial").parent
        surf_dir.mkdir(parents=True, exist_ok=True)
        write_geometry(str(layout.surface(hemi, "inflated")), unit * 30 + [(-35 if hemi == "lh" else 35), 0, 0], faces)
        write_geometry(str(layout.surface(hemi, "pial")), unit * 20, faces)
        write_morph_data(str(layout.surface(hemi, "sulc")), rng.normal(size=n).astype(np.float32))
        for layer, radius in zip((1, 2, 3), (2.2, 2.6, 3.0)):
            coords = centers[hemi] + unit * radius + 1.0  # 1-based voxel coordinates
            coords[:2] = 9999  # two vertices with no valid position at all
            if layer == 3:
                coords[2] = 9999  # one more vertex invalid on one layer only
            path = layout.layer_transform(hemi, layer)
            path.parent.mkdir(parents=True, exist_ok=True)
            nib.MGHImage(coords.astype(np.float32).reshape(n, 1, 1, 3), np.eye(4)).to_filename(path)
        # a 30-vertex "fsaverage": vertex i holds native vertex (7 i mod n) + 1, 1-based; the last none (9999)
        to_native = ((np.arange(FSAVERAGE_VERTICES) * 7) % n + 1).astype(np.float32)
        to_native[-1] = 9999
        nib.MGHImage(to_native.reshape(-1, 1, 1), np.eye(4)).to_filename(
            layout.layer_transform(hemi, 1).with_name(f"{hemi}.white-to-fsaverage.mgz"))


def build_tiny_nsd(root: Path, seed: int = 0) -> TinyNsd:
    import h5py
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    layout = NsdLayout(root, SUBJECT)
    order, subjectim, sharedix = _design(rng)
    layout.expdesign.parent.mkdir(parents=True, exist_ok=True)
    savemat(layout.expdesign, {"masterordering": order[None, :].astype(np.float64),
                               "subjectim": subjectim.astype(np.float64),
                               "sharedix": sharedix[None, :].astype(np.float64),
                               "stimpattern": np.zeros((40, 12, 75), dtype=np.uint8)})
    nsd_ids = subjectim[SUBJECT - 1, order - 1] - 1
    test_ids = set(nsd_ids[order <= 1000].tolist())
    train_ids = set(nsd_ids[order > 1000].tolist())

    general, rois = _mask_and_rois(rng)
    _write_nifti(layout.nsdgeneral, general)
    for volume, labels in rois.items():
        _write_nifti(layout.roi_volume(volume), labels)
        ctab = layout.roi_ctab(volume)
        ctab.parent.mkdir(parents=True, exist_ok=True)
        ctab.write_text("0 Unknown 0 0 0 0\n" + "".join(
            f"{value} {name} {value * 20} 100 {255 - value * 20} 0\n" for value, name in ROI_LABELS[volume].items()))

    layout.betas_dir.mkdir(parents=True, exist_ok=True)
    for s in range(1, N_SESSIONS + 1):
        # int16 betas (percent signal change × 300) with a session offset and scale, so per-session
        # z-scoring visibly differs from pooled z-scoring
        betas = (rng.normal(size=(*VOLUME, TRIALS_PER_SESSION)) * 300 * s + 100 * s).astype(np.int16)
        _write_nifti(layout.betas(s, "nii.gz"), betas)
        with h5py.File(layout.betas(s, "hdf5"), "w") as f:
            # h5py sees (trials, Z, Y, X); NSD's files hold one chunk per voxel
            f.create_dataset("betas", data=betas.transpose(3, 2, 1, 0), chunks=(TRIALS_PER_SESSION, 1, 1, 1))

    images = rng.integers(0, 256, size=(N_STIMULI, STIMULUS_SIZE, STIMULUS_SIZE, 3), dtype=np.uint8)
    layout.stimuli.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(layout.stimuli, "w") as f:
        f.create_dataset("imgBrick", data=images)

    coco_ids = {nsd: 500000 + 7 * nsd for nsd in range(N_STIMULI)}
    splits = {nsd: ("val2017" if nsd % 4 == 0 else "train2017") for nsd in range(N_STIMULI)}
    with open(layout.stim_info, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["", "cocoId", "cocoSplit", "cropBox", "loss", "nsdId", "flagged", "BOLD5000", "shared1000"]
                        + [f"subject{i}" for i in range(1, 9)])
        for nsd in range(N_STIMULI):
            writer.writerow([nsd, coco_ids[nsd], splits[nsd], "(0, 0, 0.1, 0.1)", 0.0, nsd, False, False,
                             nsd in test_ids] + [0] * 8)
    captions = _captions(rng, {coco_ids[n]: splits[n] for n in range(N_STIMULI)})
    layout.coco_annotations.mkdir(parents=True, exist_ok=True)
    for split, annotations in captions.items():
        images_meta = sorted({a["image_id"] for a in annotations})
        (layout.coco_annotations / f"captions_{split}.json").write_text(json.dumps(
            {"info": {}, "licenses": [], "images": [{"id": i} for i in images_meta], "annotations": annotations}))

    _surfaces(layout, rng)
    return TinyNsd(root, layout, test_ids, train_ids, general > 0)


@pytest.fixture(scope="session")
def tiny_nsd(tmp_path_factory) -> TinyNsd:
    return build_tiny_nsd(tmp_path_factory.mktemp("nsd_root"))


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory) -> dict[str, Path]:
    """Tiny random BLIP-2 captioner and retrieval models saved to disk (real classes, real loading code)."""
    from brainview.decoding.tiny_vlm import save_tiny_blip2, train_tokenizer

    tokenizer = train_tokenizer(list(WORDS.values()) * 4, vocab_size=300)
    return save_tiny_blip2(tmp_path_factory.mktemp("tiny_vlm"), tokenizer, seed=0, n_query=4, query_dim=16,
                           text_dim=8, image_size=32, patch_size=8, vision_hidden=16, lm_hidden=16)
