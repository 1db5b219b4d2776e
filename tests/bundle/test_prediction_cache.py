"""The prediction cache (format version 2): written atomically, read through the bounded reader, checked
against the weights when a session opens the bundle; a stale one is not used and the user is told."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from brainview.bundle import BundleError, open_bundle
from brainview.bundle.predictions import fingerprint_problem, write_cache
from brainview.cli import main
from brainview.decoding.brain_model import BrainModel
from brainview.decoding.prediction_cache import SAMPLE_TRIALS, TOLERANCE, add_cache, compute_cache, sample_trials
from brainview.state.session import Session, finish, open_for_browsing
from tests.factories import make_bundle


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A version-1 bundle (no cache) of 40 trials."""
    return make_bundle(tmp_path_factory.mktemp("cache") / "plain")


@pytest.fixture
def cached(plain, tmp_path):
    shutil.copytree(plain.path, tmp_path / "cached")
    bundle, _ = add_cache(tmp_path / "cached")
    return bundle


@pytest.fixture
def passes(monkeypatch):
    """Counts the prediction passes over a stage's weights (``BrainModel.iter_predict`` calls) and the
    patterns each predicted."""
    seen: list[tuple[str, int]] = []
    original = BrainModel.iter_predict

    def counted(self, patterns, stage="stage2"):
        seen.append((stage, int(np.atleast_2d(patterns).shape[0])))
        return (yield from original(self, patterns, stage))

    monkeypatch.setattr(BrainModel, "iter_predict", counted)
    return seen


def _ranked(path) -> Session:
    session = Session()
    session.set_loaded(open_for_browsing(path))
    session.set_predictions(finish(session.iter_predictions()))
    return session


def test_a_version_1_bundle_opens_as_before_and_predicts_every_trial(plain, passes):
    assert plain.manifest["version"] == 1 and plain.predictions == {}
    session = _ranked(plain.path)
    assert session.notes == [] and session.ranks_ready
    n_rois = len(plain.rois)
    # opening: the first trial and the ROIs, one pass per stage; ranking: every trial, one pass per stage
    assert passes == [("stage1", 1 + n_rois), ("stage2", 1 + n_rois), ("stage1", 40), ("stage2", 40)]


def test_a_valid_cache_fills_every_rank_without_a_prediction_pass(plain, cached, passes):
    assert cached.manifest["version"] == 2 and set(cached.predictions) == {"stage1", "stage2"}
    assert cached.predictions["stage1"].dtype == np.float16
    session = _ranked(cached.path)
    # no pass at opening (the sample is checked on a subset of the outputs), none for the ranks
    assert passes == []
    # the ROIs' sums, which a prediction pass would have brought along, follow after the ranks, once
    finish(session.iter_sum_rois())
    finish(session.iter_sum_rois())
    assert passes == [(s, len(cached.rois)) for s in ("stage1", "stage2")]
    assert session.notes == []
    reference = _ranked(plain.path)
    for stage in cached.stages:  # float16 tokens give the ranks float32 predictions give
        np.testing.assert_array_equal(session.scores[stage]["image_rank"], reference.scores[stage]["image_rank"])
        np.testing.assert_allclose(session.decoder.tokens_for_trials([5], stage),
                                   reference.decoder.tokens_for_trials([5], stage), rtol=2e-3, atol=1e-3)


def test_the_sample_includes_the_first_trial_and_is_seeded():
    first = sample_trials(40, 7)
    assert first[0] == 7 and 7 not in first[1:] and len(first) == 1 + SAMPLE_TRIALS
    np.testing.assert_array_equal(first, sample_trials(40, 7))
    assert len(sample_trials(3, 0)) == 3


def _rewrite_weights(path, change):
    from safetensors.numpy import save_file

    bundle = open_bundle(path)
    tensors = {k: change(k, np.array(v)) for k, v in bundle.weights.items()}
    del bundle
    (path / "brain_model.safetensors").unlink()
    save_file(tensors, str(path / "brain_model.safetensors"))


def test_weights_changed_after_export_make_the_cache_stale(cached, passes):
    _rewrite_weights(cached.path, lambda key, v: v * np.float32(1.01) if key == "stage2.weight" else v)
    assert "brain_model.safetensors changed" in fingerprint_problem(open_bundle(cached.path))
    session = _ranked(cached.path)
    assert len(session.notes) == 1 and "prediction cache cannot be used" in session.notes[0]
    assert "brain_model.safetensors changed" in session.notes[0] and "brainview cache" in session.notes[0]
    assert [n for _, n in passes][-2:] == [40, 40]  # every trial predicted from the weights instead
    session.set_notes(["language models loaded"])  # the note about the bundle stays before the others
    assert session.notes[0].startswith("The bundle's prediction cache") and len(session.notes) == 2
    assert main(["info", str(cached.path)]) == 0


def test_a_cache_that_disagrees_on_a_sampled_trial_is_not_used(cached, capsys):
    """Fingerprints match (only the cached tokens were damaged): the sample check catches it."""
    trial = int(sample_trials(cached.n_trials, 0)[3])
    tokens = np.array(cached.predictions["stage1"])
    tokens[trial] *= np.float16(1.05)
    np.save(cached.path / "predictions" / "stage1.npy", tokens)
    bundle = open_bundle(cached.path)
    assert fingerprint_problem(bundle) is None
    loaded = open_for_browsing(cached.path)
    assert loaded.cache.stages == [] and f"trial t{trial:04d}" in loaded.cache.problem
    assert "5.0%" in loaded.cache.problem and loaded.cache.max_error > TOLERANCE
    assert not loaded.decoder.has_all_tokens("stage2")  # not even the stage that agreed is used


def test_changed_fmri_makes_the_cache_stale(cached):
    fmri = np.array(cached.fmri)
    fmri[-1] += 1.0  # a trial outside the sample: the fingerprint catches it
    np.save(cached.path / "test" / "fmri.npy", fmri)
    loaded = open_for_browsing(cached.path)
    assert "test/fmri.npy changed" in loaded.cache.note and not loaded.cache.stages


def _write_cache_file(path, array):
    np.save(path / "predictions" / "stage1.npy", array)


@pytest.mark.parametrize("damage, problem", [
    (lambda t: t[:-1], "has shape (39, 4, 8), expected (n_trials=40, n_query=4, n_query_dim=8)"),
    (lambda t: t.astype(np.float64), "has dtype float64, expected float16"),
    (lambda t: t.astype(np.int16), "has dtype int16, expected float16"),
    (lambda t: np.where(np.arange(t.size).reshape(t.shape) == t.size - 1, np.float16(np.nan), t), "NaN"),
    (lambda t: np.where(np.arange(t.size).reshape(t.shape) == 0, np.float16(np.inf), t), "NaN or infinite"),
])
def test_a_damaged_cache_file_is_not_used(cached, damage, problem):
    """The cache is derived data: a damaged file leaves the bundle without a cache, and says why."""
    tokens = np.array(cached.predictions["stage1"])
    _write_cache_file(cached.path, damage(tokens))
    bundle = open_bundle(cached.path)
    assert bundle.predictions == {} and "predictions/stage1.npy" in bundle.predictions_problem
    assert problem.replace("n_query_dim", "query_dim") in bundle.predictions_problem


@pytest.mark.parametrize("change, problem", [
    (lambda m: m["predictions"].update(weights="not-a-hash"), '"predictions.weights" must be a string matching'),
    (lambda m: m["predictions"].update(dtype="int8"), '"predictions.dtype" must be one of'),
    (lambda m: m["predictions"].update(stages=["stage3"]), '"predictions.stages" must be'),
    (lambda m: m["predictions"].update(extra=1), '"predictions" has unknown keys'),
    (lambda m: m["predictions"].pop("fmri"), 'missing "predictions.fmri"'),
])
def test_the_manifest_entry_is_checked(cached, change, problem):
    file = cached.path / "manifest.json"
    manifest = json.loads(file.read_text())
    change(manifest)
    file.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="manifest.json") as error:
        open_bundle(cached.path)
    assert problem in str(error.value)


def test_an_announced_cache_file_that_is_gone_is_no_cache(cached):
    (cached.path / "predictions" / "stage2.npy").unlink()
    bundle = open_bundle(cached.path)
    assert bundle.predictions == {} and "predictions/stage2.npy: missing" in bundle.predictions_problem


def test_version_1_never_reads_a_cache(cached):
    """A version-1 manifest keeps a "predictions" entry unread, and files under predictions/ are ignored."""
    file = cached.path / "manifest.json"
    manifest = json.loads(file.read_text())
    manifest["version"] = 1
    manifest["predictions"]["weights"] = "whatever a later version means"
    file.write_text(json.dumps(manifest))
    (cached.path / "predictions" / "stage1.npy").write_bytes(b"not an array")
    bundle = open_bundle(cached.path)
    assert bundle.predictions == {} and open_for_browsing(cached.path).cache.note is None


def test_a_failed_write_changes_nothing(plain, tmp_path, monkeypatch):
    shutil.copytree(plain.path, tmp_path / "b")
    bundle = open_bundle(tmp_path / "b")
    before = sorted(p.relative_to(bundle.path) for p in bundle.path.rglob("*"))
    manifest = (bundle.path / "manifest.json").read_bytes()
    tokens = compute_cache(bundle)
    calls = []

    def failing_save(file, array, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return np.lib.format.write_array(file, np.asanyarray(array))

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(OSError, match="No space"):
        write_cache(bundle, tokens)
    assert sorted(p.relative_to(bundle.path) for p in bundle.path.rglob("*")) == before
    assert (bundle.path / "manifest.json").read_bytes() == manifest


def test_rewriting_a_cache_replaces_it(cached):
    bundle, check = add_cache(cached.path, dtype="float32")
    assert bundle.predictions["stage2"].dtype == np.float32 and check.max_error < 1e-5
    assert bundle.manifest["predictions"]["dtype"] == "float32"
    assert sorted(p.name for p in bundle.path.iterdir() if p.name.startswith(".")) == []  # no leftovers


def test_the_cache_command(plain, tmp_path, capsys):
    shutil.copytree(plain.path, tmp_path / "b")
    assert main(["cache", str(tmp_path / "b"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == 2 and report["stages"] == ["stage1", "stage2"] and report["dtype"] == "float16"
    assert report["checked_trials"] == 1 + SAMPLE_TRIALS and 0 < report["max_relative_error"] < TOLERANCE
    assert main(["info", str(tmp_path / "b"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["predictions"] == {"stages": ["stage1", "stage2"], "dtype": "float16", "problem": None,
                                   "checked_trials": 1 + SAMPLE_TRIALS}


@pytest.mark.parametrize("where", ["missing", "file", "broken"])
def test_the_cache_command_refuses_a_broken_path_with_one_line(plain, tmp_path, capsys, where):
    path = tmp_path / "b"
    if where == "file":
        path.write_text("x")
    elif where == "broken":
        shutil.copytree(plain.path, path)
        (path / "test" / "fmri.npy").write_bytes(b"\x93NUMPY garbage")
    assert main(["cache", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("brainview: error:") and err.count("\n") == 1 and "Traceback" not in err


def test_the_cache_command_says_when_the_folder_is_read_only(plain, tmp_path, capsys):
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    path = tmp_path / "b"
    shutil.copytree(plain.path, path)
    path.chmod(0o555)
    try:
        assert main(["cache", str(path)]) == 2
    finally:
        path.chmod(0o755)
    err = capsys.readouterr().err
    assert "cannot write the prediction cache" in err and err.count("\n") == 1
    assert open_bundle(path).manifest["version"] == 1
