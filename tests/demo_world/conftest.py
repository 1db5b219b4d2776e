"""The reduced demo build, made once per test run and shared by the build and the study tests."""

import pytest


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory):
    from brainview.bundle import open_bundle
    from training.demo_world.__main__ import main

    out = tmp_path_factory.mktemp("demo") / "bundle"
    assert main(["build", "--out", str(out), "--seed", "0", "--size", "small"]) == 0
    return open_bundle(out)
