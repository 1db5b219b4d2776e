"""The optional single trials (``test/fmri_repeats.npy`` with ``test/fmri_repeat_counts.npy``): written,
read back, every damaged variant refused with one message naming the file, bundles without them unchanged."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from brainview.bundle import BundleError, open_bundle
from brainview.bundle import format as F
from brainview.bundle.repeats import window_patterns
from tests.bundle.fuzz import run_cli
from tests.factories import make_bundle


@pytest.fixture(scope="module")
def with_repeats(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("repeats") / "b", n_trials=12, n_voxels=30, subdivisions=1, repeats=3)


def _copy(bundle, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(bundle.path, out)
    return out


def test_the_repeats_read_back_and_average_to_the_stored_pattern(with_repeats):
    b = with_repeats
    assert b.max_repeats == 3 and b.fmri_repeats.shape == (12, 3, 30)
    assert b.repeat_counts.tolist() == [3, 3, 2] * 4
    for t, c in enumerate(b.repeat_counts):
        np.testing.assert_allclose(np.asarray(b.fmri_repeats[t, :c]).mean(0), b.fmri[t], atol=1e-5)
        assert not np.asarray(b.fmri_repeats[t, c:]).any()  # slots past the count are written as zeros


def test_a_bundle_without_repeats_is_unchanged(tmp_path):
    b = make_bundle(tmp_path / "plain", n_trials=6, n_voxels=20, subdivisions=1)
    assert b.fmri_repeats is None and b.repeat_counts is None and b.max_repeats == 0
    assert not (b.path / F.FMRI_REPEATS).exists() and not (b.path / F.FMRI_REPEAT_COUNTS).exists()


def test_window_patterns_take_each_repeat_singly_then_each_pair(with_repeats):
    b = with_repeats
    reps = np.asarray(b.fmri_repeats, dtype=np.float32)
    for start in range(3):
        single = window_patterns(b.fmri_repeats, b.repeat_counts, 1, start)
        np.testing.assert_array_equal(single[0], reps[0, start])
        np.testing.assert_array_equal(single[2], reps[2, start % 2])  # two repeats: wraps around
        pair = window_patterns(b.fmri_repeats, b.repeat_counts, 2, start)
        np.testing.assert_allclose(pair[0], (reps[0, start] + reps[0, (start + 1) % 3]) / 2, rtol=1e-6)
        np.testing.assert_allclose(pair[2], b.fmri[2], atol=1e-5)  # all of its two repeats
    np.testing.assert_allclose(window_patterns(b.fmri_repeats, b.repeat_counts, 3, 0), b.fmri, atol=1e-5)


def _save(path, array):
    with open(path, "wb") as handle:  # np.save on the open file: no ".npy" appended, links overwritten in place
        np.save(handle, array)


DAMAGE = {
    "counts missing": (lambda p: (p / F.FMRI_REPEAT_COUNTS).unlink(), F.FMRI_REPEATS, "give both or neither"),
    "repeats missing": (lambda p: (p / F.FMRI_REPEATS).unlink(), F.FMRI_REPEAT_COUNTS, "give both or neither"),
    "count zero": (lambda p: _save(p / F.FMRI_REPEAT_COUNTS, np.array([0] + [3] * 11, np.uint8)),
                   F.FMRI_REPEAT_COUNTS, "trial 0 has 0 repeats"),
    "count above the slots": (lambda p: _save(p / F.FMRI_REPEAT_COUNTS, np.array([3] * 11 + [4], np.int32)),
                              F.FMRI_REPEAT_COUNTS, "trial 11 has 4 repeats"),
    "counts not integers": (lambda p: _save(p / F.FMRI_REPEAT_COUNTS, np.full(12, 3.0)), F.FMRI_REPEAT_COUNTS,
                            "dtype float64"),
    "counts for fewer trials": (lambda p: _save(p / F.FMRI_REPEAT_COUNTS, np.full(11, 3, np.uint8)),
                                F.FMRI_REPEAT_COUNTS, "expected (n_trials=12)"),
    "wrong voxel count": (lambda p: _save(p / F.FMRI_REPEATS, np.zeros((12, 3, 29), np.float32)), F.FMRI_REPEATS,
                          "n_voxels=30"),
    "wrong trial count": (lambda p: _save(p / F.FMRI_REPEATS, np.zeros((13, 3, 30), np.float32)), F.FMRI_REPEATS,
                          "n_trials=12"),
    "no slots": (lambda p: _save(p / F.FMRI_REPEATS, np.zeros((12, 0, 30), np.float32)), F.FMRI_REPEATS,
                 "no repeat slots"),
    "too many slots": (lambda p: _save(p / F.FMRI_REPEATS, np.zeros((12, F.MAX_REPEATS + 1, 30), np.float16)),
                       F.FMRI_REPEATS, "more than the 64"),
    "integer repeats": (lambda p: _save(p / F.FMRI_REPEATS, np.zeros((12, 3, 30), np.int32)), F.FMRI_REPEATS,
                        "dtype int32"),
    "truncated": (lambda p: p.joinpath(F.FMRI_REPEATS).write_bytes(p.joinpath(F.FMRI_REPEATS).read_bytes()[:-7]),
                  F.FMRI_REPEATS, "damaged"),
    "a link out": (lambda p: (p / F.FMRI_REPEATS).unlink() or (p / F.FMRI_REPEATS).symlink_to(p.parent / "x.npy"),
                   F.FMRI_REPEATS, "outside the bundle"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_every_damaged_repeat_file_is_refused_naming_it(with_repeats, tmp_path, damage):
    apply, file, words = DAMAGE[damage]
    path = _copy(with_repeats, tmp_path)
    _save(tmp_path / "x.npy", np.zeros((12, 3, 30), np.float32))
    apply(path)
    with pytest.raises(BundleError) as caught:
        open_bundle(path)
    assert caught.value.file == file and words in caught.value.problem
    code, _, err, _ = run_cli(["info", str(path)])
    assert code == 2 and err.count("\n") == 1 and file in err


def test_nan_counts_only_in_a_valid_slot(with_repeats, tmp_path):
    path = _copy(with_repeats, tmp_path)
    reps = np.array(np.load(path / F.FMRI_REPEATS))
    reps[2, 2] = np.nan  # trial 2 has two repeats: its third slot is not data
    _save(path / F.FMRI_REPEATS, reps)
    assert open_bundle(path).repeat_counts[2] == 2
    reps[5, 1, 7] = np.inf
    _save(path / F.FMRI_REPEATS, reps)
    with pytest.raises(BundleError, match=r"trial 5, repeat 2"):
        open_bundle(path)
