"""``brainview cache`` killed (SIGKILL) before every filesystem step of replacing a cache: the bundle
always opens, with the old cache, the new one or none (version 1), never a cache the app would
refuse; and the next ``cache`` cleans what the kill left and writes a cache that is used."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile

import numpy as np
import pytest

from brainview.bundle import open_bundle
from brainview.bundle.predictions import write_cache
from brainview.decoding.decoder import Decoder
from brainview.decoding.prediction_cache import add_cache, check_cache, compute_cache
from tests.factories import make_bundle

#: every call that changes the bundle folder or makes a change durable
STEPS = [(os, "rename"), (os, "replace"), (os, "fsync"), (os, "unlink"), (os, "rmdir"), (shutil, "rmtree"),
         (tempfile, "mkdtemp"), (tempfile, "mkstemp"), (np, "save")]


def write_killed_at(path, kill_at: int) -> int:
    """Replace the cache of the bundle at ``path`` by a float16 one in a forked child killed just before
    its ``kill_at``-th filesystem step (-1: never); returns the number of steps (when not killed)."""
    bundle = open_bundle(path)
    tokens = compute_cache(bundle)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: count the steps, die at the chosen one
        os.close(read)
        count = [0]

        def counted(original):
            def step(*args, **kwargs):
                if count[0] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                count[0] += 1
                return original(*args, **kwargs)
            return step

        for owner, name in STEPS:
            setattr(owner, name, counted(getattr(owner, name)))
        try:
            write_cache(bundle, tokens, dtype="float16")
            os.write(write, str(count[0]).encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    steps = os.read(read, 100)
    os.close(read)
    if kill_at >= 0 and os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return -1
    return int(steps)


@pytest.fixture(scope="module")
def old_cache(tmp_path_factory):
    """A bundle with a float32 cache, which the kills replace by a float16 one."""
    root = tmp_path_factory.mktemp("kills")
    bundle = make_bundle(root / "b", n_trials=12)
    add_cache(bundle.path, dtype="float32")
    return bundle.path


@pytest.mark.timeout(300)
def test_a_kill_at_every_step_leaves_a_bundle_that_opens(old_cache, tmp_path):
    probe = tmp_path / "probe"
    shutil.copytree(old_cache, probe)
    n_steps = write_killed_at(probe, -1)
    assert n_steps >= 10 and open_bundle(probe).manifest["predictions"]["dtype"] == "float16"
    seen = set()
    for k in range(n_steps):
        copy = tmp_path / f"k{k}"
        shutil.copytree(old_cache, copy)
        assert write_killed_at(copy, k) == -1, f"step {k} was not reached"
        bundle = open_bundle(copy)  # never a bundle that no longer opens
        check = check_cache(Decoder(bundle))
        if bundle.predictions:
            assert check.problem is None, (k, check.problem)  # a cache that is there is one the app uses
            seen.add(bundle.manifest["predictions"]["dtype"])
        else:
            assert bundle.manifest["version"] == 1 and bundle.predictions_problem is None, k
            seen.add("none")
        rebuilt, check = add_cache(copy)  # the next run cleans up and writes a cache that is used
        assert check.problem is None and rebuilt.manifest["predictions"]["dtype"] == "float16"
        assert sorted(p.name for p in copy.iterdir() if p.name.startswith(".")) == [], k
        shutil.rmtree(copy)
    assert seen == {"float32", "float16", "none"}, seen


def test_a_missing_or_damaged_cache_is_no_cache(old_cache, tmp_path):
    from brainview.state.loading import open_for_browsing

    copy = tmp_path / "b"
    shutil.copytree(old_cache, copy)
    shutil.rmtree(copy / "predictions")
    bundle = open_bundle(copy)
    assert bundle.predictions == {} and "predictions/stage1.npy: missing" in bundle.predictions_problem
    note = open_for_browsing(copy).cache.note
    assert "cannot be used" in note and f"brainview cache {copy}" in note


def test_info_does_not_call_an_all_zero_or_swapped_cache_matching(old_cache, tmp_path, capsys):
    import json

    from brainview.cli import main

    copy = tmp_path / "b"
    shutil.copytree(old_cache, copy)
    stage1, stage2 = (np.load(copy / "predictions" / f"{s}.npy") for s in ("stage1", "stage2"))
    np.save(copy / "predictions" / "stage1.npy", stage2)
    np.save(copy / "predictions" / "stage2.npy", stage1)
    assert main(["info", str(copy), "--json"]) == 0
    swapped = json.loads(capsys.readouterr().out)["predictions"]
    assert swapped["problem"] and "differs from the weights' prediction" in swapped["problem"]
    np.save(copy / "predictions" / "stage1.npy", np.zeros_like(stage1))
    assert main(["info", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "not used:" in out and "match" not in out.split("predictions")[-1]


def test_a_session_saved_before_cache_still_finds_its_bundle(tmp_path):
    from brainview.state.session_file import bundle_fingerprint, bundle_problem

    bundle = make_bundle(tmp_path / "b", n_trials=12)
    recorded = bundle_fingerprint(bundle.path)
    add_cache(bundle.path)
    assert bundle_problem(recorded) is None
