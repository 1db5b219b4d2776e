"""The demo world's single trials: the build keeps them, the ``repeats`` step adds the same ones to a built
bundle, and they average to the stored fMRI, so no figure decoded from the mean changes."""

from __future__ import annotations

import shutil

import numpy as np

from brainview.bundle import format as F
from brainview.bundle import open_bundle
from brainview.paths import demo_bundle_path


def test_the_shipped_demo_has_three_noisy_repeats_per_image_averaging_to_its_fmri():
    demo = open_bundle(demo_bundle_path())
    repeats = np.asarray(demo.fmri_repeats, dtype=np.float32)
    assert repeats.shape == (demo.n_trials, 3, demo.n_voxels) and demo.fmri_repeats.dtype == np.float16
    assert (demo.repeat_counts == 3).all()
    np.testing.assert_allclose(repeats.mean(axis=1), demo.fmri, atol=2e-3)  # float16 rounding
    # each single trial carries the noise the mean averaged out: repeats agree only partly
    agreement = np.corrcoef(repeats[:, 0].ravel(), repeats[:, 1].ravel())[0, 1]
    assert 0.2 < agreement < 0.8
    assert (demo.path / F.FMRI_REPEATS).stat().st_size < 2 * 2**20


def test_the_repeats_step_adds_the_very_trials_the_build_wrote(small_bundle, tmp_path):
    from training.demo_world.__main__ import main

    built = small_bundle
    assert built.max_repeats == 3
    np.testing.assert_allclose(np.asarray(built.fmri_repeats, np.float32).mean(axis=1), built.fmri, atol=2e-3)
    copy = tmp_path / "copy"
    shutil.copytree(built.path, copy)
    for rel in (F.FMRI_REPEATS, F.FMRI_REPEAT_COUNTS):
        (copy / rel).unlink()
    assert main(["repeats", "--bundle", str(copy)]) == 0
    again = open_bundle(copy)
    np.testing.assert_array_equal(np.asarray(again.fmri_repeats), np.asarray(built.fmri_repeats))
    np.testing.assert_array_equal(again.repeat_counts, built.repeat_counts)
