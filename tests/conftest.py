"""Bundles shared by the session and the Qt tests: small, with and without tiny BLIP-2 models."""

from __future__ import annotations

import shutil

import pytest

N_TRIALS = 12
BUNDLE_SHAPE = dict(n_trials=N_TRIALS, n_voxels=48, n_query=4, query_dim=8, text_dim=6, subdivisions=2)


_built: dict[bool, object] = {}


def make_app_bundle(tmp_path_factory, captioner: bool = True):
    """A bundle from ``tests.factories.make_bundle``, built once per test run (the session and Qt tests
    share it); with ``captioner`` it ships tiny BLIP-2 models with short generations."""
    if captioner in _built:
        return _built[captioner]
    from tests.factories import make_bundle, make_captioned_bundle

    root = tmp_path_factory.mktemp("app_bundle" if captioner else "retrieval_bundle")
    if captioner:
        bundle = make_captioned_bundle(root, max_new_tokens=6, **BUNDLE_SHAPE)
    else:
        bundle = make_bundle(root / "bundle", **BUNDLE_SHAPE)
    _built[captioner] = bundle
    return bundle


@pytest.fixture(scope="session")
def app_bundle(tmp_path_factory):
    """A bundle whose captions come from tiny BLIP-2 models."""
    return make_app_bundle(tmp_path_factory)


@pytest.fixture(scope="session")
def retrieval_only_bundle(tmp_path_factory):
    """A bundle that names no language model: retrieval works, captions are off."""
    return make_app_bundle(tmp_path_factory, captioner=False)


@pytest.fixture(scope="session")
def broken_bundle(tmp_path_factory, retrieval_only_bundle):
    """A copy of a valid bundle whose fMRI has the wrong number of voxels."""
    import numpy as np

    root = tmp_path_factory.mktemp("broken") / "bundle"
    shutil.copytree(retrieval_only_bundle.path, root)
    np.save(root / "test" / "fmri.npy", np.zeros((N_TRIALS, 5), dtype=np.float32))
    return root


@pytest.fixture(scope="session", autouse=True)
def isolated_study_cache(tmp_path_factory):
    """The demo study the app builds on first use (and captioner speeds) go to a test folder, never the
    user's cache."""
    import os

    os.environ["BRAINVIEW_STUDY_CACHE"] = str(tmp_path_factory.mktemp("study_cache"))
    # captioner speeds measured on loading go to a test file, never the user's cache
    os.environ["BRAINVIEW_SPEED_FILE"] = str(tmp_path_factory.mktemp("speed") / "cpu_speed.json")


@pytest.fixture(scope="session")
def study_file(tmp_path_factory, app_bundle):
    """A study of three subjects: the captioned bundle, a copy nudged into another subject, and one that
    missed the last stimulus."""
    from brainview.analysis.study import write_study
    from tests.factories import drop_last_trial, make_distinct

    root = tmp_path_factory.mktemp("study")
    for name in ("subj01", "subj02", "subj05"):
        shutil.copytree(app_bundle.path, root / name)
    make_distinct(root / "subj02")
    drop_last_trial(root / "subj05")
    return write_study(root, {s: root / s for s in ("subj01", "subj02", "subj05")}, name="three", match="nsd_id")


class ModalDialogError(AssertionError):
    """A test reached a modal dialog nobody answers: offscreen it would wait forever (CI's timeout)."""


#: the calls that run a modal event loop until a person answers, by class
_MODAL_CALLS = {
    "QDialog": ("exec",),
    "QMenu": ("exec",),
    "QMessageBox": ("exec", "critical", "information", "warning", "question", "about"),
    "QFileDialog": ("exec", "getOpenFileName", "getOpenFileNames", "getSaveFileName", "getExistingDirectory"),
    "QInputDialog": ("exec", "getText", "getItem", "getInt", "getDouble"),
}


@pytest.fixture(autouse=True)
def no_unanswered_modal_dialogs(monkeypatch):
    """Make a modal dialog a test did not expect fail that test with the dialog's text instead of
    blocking the whole run; tests that expect one replace it themselves (``recorded_dialogs``)."""
    from PySide6 import QtWidgets

    def refuse(where):
        def modal(*args, **kwargs):
            shown = [a for a in args if isinstance(a, str)] or [type(a).__name__ for a in args[:1]]
            raise ModalDialogError(f"{where} would wait for a person: {shown}")
        return modal

    for cls_name, methods in _MODAL_CALLS.items():
        cls = getattr(QtWidgets, cls_name)
        for method in methods:
            monkeypatch.setattr(cls, method, refuse(f"{cls_name}.{method}"))
