"""Fixtures for the app's Qt tests: offscreen Qt, small bundles (with and without tiny BLIP-2
models), a window per test, and a check that no worker thread or window outlives its test."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt

import gc  # noqa: E402
import shutil  # noqa: E402

import pytest  # noqa: E402

N_TRIALS = 12
BUNDLE_SHAPE = dict(n_trials=N_TRIALS, n_voxels=48, n_query=4, query_dim=8, text_dim=6, subdivisions=2)


_built: dict[bool, object] = {}


def make_app_bundle(tmp_path_factory, captioner: bool = True):
    """A bundle from ``tests.factories.make_bundle``, built once per test run (the session tests
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


@pytest.fixture(autouse=True)
def no_leaked_threads_or_windows(qapp):
    """Fail a test that leaves a worker thread running or a top-level widget alive (as napari does)."""
    from PySide6.QtCore import QEvent, QThreadPool
    from PySide6.QtWidgets import QApplication

    before = set(QApplication.topLevelWidgets())
    yield
    pool = QThreadPool.globalInstance()
    finished = pool.waitForDone(10000)
    QApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    QApplication.processEvents()
    gc.collect()  # parentless widgets held by Python objects (pyqtgraph's menus) go with their owners
    leaked = [w for w in QApplication.topLevelWidgets() if w not in before]
    assert finished and pool.activeThreadCount() == 0, "a worker thread outlived the test"
    names = [(type(w).__name__, w.objectName() or w.windowTitle()) for w in leaked]
    assert not leaked, f"widgets outlived the test: {names}"


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "brainview.ini"), QSettings.IniFormat)


@pytest.fixture
def window(qapp, qtbot, settings):
    """An empty main window on the CPU; closed and deleted after the test."""
    from brainview.qt.main_window import QtMainWindow

    win = QtMainWindow(device="cpu", settings=settings)
    win.session.score_metrics = ("rougeL",)  # the fast metric; the others load models or WordNet
    win.score_on_open = False  # captioning every trial is tested once, where asked for
    win.resize(1400, 900)
    win.show()
    yield win
    win.close()
    win.deleteLater()


@pytest.fixture
def recorded_dialogs(monkeypatch):
    """QMessageBox.critical / information record (title, text) instead of blocking."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[tuple[str, str, str]] = []
    monkeypatch.setattr(QMessageBox, "critical",
                        lambda parent, title, text, *a, **k: shown.append(("critical", title, text)))
    monkeypatch.setattr(QMessageBox, "information",
                        lambda parent, title, text, *a, **k: shown.append(("information", title, text)))
    return shown


def open_and_wait(qtbot, window, path, timeout=60000):
    """Open a bundle in the window's workers and wait until it is shown and its models are loaded."""
    with qtbot.waitSignal(window.models_loaded, timeout=timeout):
        window.open_bundle(path)
