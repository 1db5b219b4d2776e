"""Fixtures for the app's Qt tests: offscreen Qt, a window per test, and a check that no worker
thread or window outlives its test. The small app bundles come from ``tests/conftest.py``."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt

import gc  # noqa: E402

import pytest  # noqa: E402

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
