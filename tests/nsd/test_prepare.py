"""Step 1 on the tiny NSD tree: voxel order, splits without leaks, training-only statistics, resumption."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

from brainview.errors import UserError
from tests.nsd.conftest import N_SESSIONS, TRIALS_PER_SESSION, build_tiny_nsd
from training.nsd import prepare as prep
from training.nsd.layout import MERGED_ROIS, ROI_LABELS, WorkDir, read_json
from training.nsd.prepare import BETA_SCALE, load_design, load_mask, prepare, read_session_betas

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prepared(tiny_nsd, tmp_path_factory):
    return prepare(tiny_nsd.root, 1, tmp_path_factory.mktemp("work"))


def test_voxel_order_is_nibabels_for_both_beta_formats(tiny_nsd):
    mask, ijk = load_mask(tiny_nsd.layout)
    assert np.array_equal(ijk, np.argwhere(nib.load(tiny_nsd.layout.nsdgeneral).get_fdata() > 0))
    for session in (1, 3):
        volume = nib.load(tiny_nsd.layout.betas(session, "nii.gz")).get_fdata()  # (X, Y, Z, trials)
        expected = volume[mask].T  # nibabel's order: C order over x, y, z
        from_nifti = read_session_betas(tiny_nsd.layout, session, "nii.gz", mask)
        from_hdf5 = read_session_betas(tiny_nsd.layout, session, "hdf5", mask)
        assert from_nifti.dtype == from_hdf5.dtype == np.int16
        assert np.array_equal(from_nifti, expected) and np.array_equal(from_hdf5, expected)
        voxel = ijk[7]  # and one voxel by hand, straight from the HDF5's (trials, Z, Y, X) layout
        with h5py.File(tiny_nsd.layout.betas(session, "hdf5"), "r") as f:
            assert np.array_equal(from_hdf5[:, 7], f["betas"][:, voxel[2], voxel[1], voxel[0]])


def test_hdf5_in_nsd_chunk_layout_reads_only_the_masks_chunks(tiny_nsd, tmp_path, monkeypatch):
    """NSD's one-chunk-per-voxel files are read voxel run by voxel run; other layouts by trial blocks."""
    mask, _ = load_mask(tiny_nsd.layout)
    with h5py.File(tiny_nsd.layout.betas(2, "hdf5"), "r") as f:
        assert f["betas"].chunks == (TRIALS_PER_SESSION, 1, 1, 1)  # the fixture writes the real layout
        betas = f["betas"][()]
    touched = np.zeros(mask.shape, dtype=np.int64)  # how often each voxel's chunk was read
    original = prep._hdf5_masked

    class Recording:  # the h5py dataset, noting which (z, y, x) each read selects
        def __init__(self, data):
            self.data, self.shape, self.dtype = data, data.shape, data.dtype

        def __getitem__(self, key):
            _, z, y, xs = key
            touched[xs, y, z] += 1
            return self.data[key]

    monkeypatch.setattr(prep, "_hdf5_masked", lambda data, m: original(Recording(data), m))
    chunked = read_session_betas(tiny_nsd.layout, 2, "hdf5", mask)
    assert np.array_equal(touched, mask.astype(np.int64))  # every mask voxel once, nothing else
    copy = build_tiny_nsd(tmp_path / "contiguous")
    with h5py.File(copy.layout.betas(2, "hdf5"), "w") as f:  # the same betas, contiguous
        f.create_dataset("betas", data=betas)
    contiguous = read_session_betas(copy.layout, 2, "hdf5", mask)
    assert np.array_equal(touched, mask.astype(np.int64))  # the contiguous file took the trial-block path
    assert np.array_equal(chunked, contiguous)
    assert np.array_equal(chunked, read_session_betas(tiny_nsd.layout, 2, "nii.gz", mask))


def test_both_beta_formats_prepare_identically(tiny_nsd, prepared, tmp_path):
    nifti = prepare(tiny_nsd.root, 1, tmp_path / "nifti", beta_format_choice="nii.gz")
    assert prepared.read_log("prepare")["beta_formats"] == ["hdf5"]
    for split in ("train", "val", "test"):
        assert np.array_equal(np.load(nifti / f"{split}_fmri.npy"), np.load(prepared / f"{split}_fmri.npy"))


def test_splits_keep_test_images_and_trials_out_of_training(tiny_nsd, prepared):
    stimuli = read_json(prepared / "stimuli.json")
    ids = {split: {r["nsd_id"] for r in stimuli[split]} for split in stimuli}
    assert ids["test"] == tiny_nsd.test_ids  # the shared images, all of them
    assert ids["train"] | ids["val"] == tiny_nsd.train_ids
    assert not (ids["train"] & ids["val"]) and not (ids["test"] & (ids["train"] | ids["val"]))
    assert len(ids["val"]) == round(0.1 * len(tiny_nsd.train_ids))
    design = load_design(tiny_nsd.layout)
    trials = {split: [t for r in stimuli[split] for t in r["trials"]] for split in stimuli}
    assert sorted(sum(trials.values(), [])) == list(range(N_SESSIONS * TRIALS_PER_SESSION))
    assert all(design.masterordering[t] <= 1000 for t in trials["test"])
    assert all(design.masterordering[t] > 1000 for t in trials["train"] + trials["val"])
    for split in stimuli:  # validation is carved by image: every trial of an image lands in one split
        for record in stimuli[split]:
            assert all(design.nsd_ids[t] == record["nsd_id"] for t in record["trials"])
            assert record["repeats"] == len(record["trials"])
    assert np.load(prepared / "train_fmri.npy").shape == (len(ids["train"]), int(tiny_nsd.mask.sum()))


def test_patterns_are_session_zscored_with_training_stats_then_averaged(tiny_nsd, prepared):
    mask = tiny_nsd.mask
    stimuli = read_json(prepared / "stimuli.json")
    train_trials = {t for r in stimuli["train"] for t in r["trials"]}
    sessions = [nib.load(tiny_nsd.layout.betas(s, "nii.gz")).get_fdata()[mask].T / BETA_SCALE
                for s in range(1, N_SESSIONS + 1)]
    z = []
    for s, x in enumerate(sessions):
        rows = [t - s * TRIALS_PER_SESSION for t in range(s * TRIALS_PER_SESSION, (s + 1) * TRIALS_PER_SESSION)
                if t in train_trials]
        z.append((x - x[rows].mean(0)) / x[rows].std(0))
    z = np.concatenate(z)
    for split in ("train", "val", "test"):
        got = np.load(prepared / f"{split}_fmri.npy")
        for row, record in enumerate(stimuli[split]):
            np.testing.assert_allclose(got[row], z[record["trials"]].mean(0), rtol=1e-4, atol=1e-4)
    assert str(np.load(prepared / "normalization.npz")["mode"]) == "session"


def _perturb_heldout_betas(tiny_nsd, root: Path, prepared: WorkDir) -> None:
    """Copy the tree and rewrite every validation and test trial's betas, in both formats."""
    shutil.copytree(tiny_nsd.root, root)
    stimuli = read_json(prepared / "stimuli.json")
    heldout = [t for split in ("val", "test") for r in stimuli[split] for t in r["trials"]]
    layout = type(tiny_nsd.layout)(root, 1)
    for s in range(1, N_SESSIONS + 1):
        local = [t - (s - 1) * TRIALS_PER_SESSION for t in heldout if (s - 1) * TRIALS_PER_SESSION <= t
                 < s * TRIALS_PER_SESSION]
        image = nib.load(layout.betas(s, "nii.gz"))
        data = np.asarray(image.dataobj).copy()
        data[..., local] = 5000
        nib.save(nib.Nifti1Image(data, image.affine, image.header), layout.betas(s, "nii.gz"))
        with h5py.File(layout.betas(s, "hdf5"), "r+") as f:
            f["betas"][...] = data.transpose(3, 2, 1, 0)


@pytest.mark.parametrize("normalize", ["session", "pooled"])
def test_normalization_statistics_come_from_training_trials_only(tiny_nsd, tmp_path, normalize):
    reference = prepare(tiny_nsd.root, 1, tmp_path / "reference", normalize=normalize)
    _perturb_heldout_betas(tiny_nsd, tmp_path / "perturbed_nsd", reference)
    perturbed = prepare(tmp_path / "perturbed_nsd", 1, tmp_path / "perturbed", normalize=normalize)
    for key in ("mean", "std"):
        assert np.array_equal(np.load(reference / "normalization.npz")[key], np.load(perturbed / "normalization.npz")[key])
    assert np.array_equal(np.load(reference / "train_fmri.npy"), np.load(perturbed / "train_fmri.npy"))
    assert not np.allclose(np.load(reference / "test_fmri.npy"), np.load(perturbed / "test_fmri.npy"))
    assert not np.allclose(np.load(reference / "val_fmri.npy"), np.load(perturbed / "val_fmri.npy"))
    stats = np.load(reference / "normalization.npz")
    assert stats["mean"].shape[0] == (N_SESSIONS if normalize == "session" else 1)


def test_pooled_differs_from_per_session(prepared, tiny_nsd, tmp_path):
    pooled = prepare(tiny_nsd.root, 1, tmp_path / "pooled", normalize="pooled")
    train = np.load(pooled / "train_fmri.npy")
    assert not np.allclose(train, np.load(prepared / "train_fmri.npy"))
    assert prepared.read_log("prepare")["settings"]["normalize"] == "session"


def test_fewer_sessions_use_only_their_trials(tiny_nsd, tmp_path):
    work = prepare(tiny_nsd.root, 1, tmp_path / "three", sessions=3)
    stimuli = read_json(work / "stimuli.json")
    trials = [t for split in stimuli for r in stimuli[split] for t in r["trials"]]
    assert max(trials) < 3 * TRIALS_PER_SESSION and len(trials) == 3 * TRIALS_PER_SESSION
    assert not (work / "sessions/session_04.npy").exists()
    with pytest.raises(UserError, match="sessions 1..4"):
        prepare(tiny_nsd.root, 1, tmp_path / "too_many", sessions=40)


def test_captions_stimulus_ids_and_rois(tiny_nsd, prepared):
    stimuli = read_json(prepared / "stimuli.json")
    record = stimuli["test"][0]
    assert record["coco_id"] == 500000 + 7 * record["nsd_id"]
    assert record["coco_split"] == ("val2017" if record["nsd_id"] % 4 == 0 else "train2017")
    assert len(record["captions"]) in (5, 6) and record["captions"][0][0].isupper()
    assert record["captions"][0] == record["captions"][0].strip()
    rois = read_json(prepared / "rois.json")
    mask = tiny_nsd.mask
    for name, (volume, values) in MERGED_ROIS.items():
        labels = nib.load(tiny_nsd.layout.roi_volume(volume)).get_fdata()[mask]
        assert rois[name]["group"] == volume
        assert rois[name]["voxels"] == np.flatnonzero(np.isin(labels, values)).tolist()
    assert set(rois["V1"]["voxels"]) == set(rois.get("V1v", {"voxels": []})["voxels"]) | set(
        rois.get("V1d", {"voxels": []})["voxels"])
    named = {n for labels in ROI_LABELS.values() for n in labels.values()}
    assert set(rois) - set(MERGED_ROIS) <= named
    assert prepared.read_log("prepare")["roi_voxels_outside_nsdgeneral"]["floc-faces"] == 5


def test_rerun_skips_finished_work(tiny_nsd, tmp_path, monkeypatch, capfd):
    work = prepare(tiny_nsd.root, 1, tmp_path / "work")
    prepare(tiny_nsd.root, 1, tmp_path / "work")
    assert "nothing to do" in capfd.readouterr().err
    # an interrupted run (no log yet, some outputs gone) resumes without rereading the sessions
    work.log_path("prepare").unlink()
    (work / "train_fmri.npy").unlink()
    monkeypatch.setattr(prep, "read_session_betas", lambda *a, **k: pytest.fail("a finished session was reread"))
    prepare(tiny_nsd.root, 1, tmp_path / "work")
    assert (work / "train_fmri.npy").exists()
    with pytest.raises(UserError, match="other settings"):
        prepare(tiny_nsd.root, 1, tmp_path / "work", normalize="pooled")


def test_command_line(tiny_nsd, tmp_path):
    run = subprocess.run([sys.executable, "-m", "training.nsd", "prepare", str(tiny_nsd.root), "--subject", "1",
                          "--out", str(tmp_path / "work"), "--normalize", "pooled"],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "masked session 4/4" in run.stderr
    log = json.loads((tmp_path / "work/logs/prepare.json").read_text())
    assert log["settings"]["normalize"] == "pooled"
    bad = subprocess.run([sys.executable, "-m", "training.nsd", "prepare", str(tmp_path / "nowhere"), "--subject", "1",
                          "--out", str(tmp_path / "w2")], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and "no betas found" in bad.stderr and "Traceback" not in bad.stderr


def test_builder_is_deterministic(tmp_path):
    a, b = build_tiny_nsd(tmp_path / "a"), build_tiny_nsd(tmp_path / "b")
    assert a.test_ids == b.test_ids and np.array_equal(a.mask, b.mask)
