"""The Qt bindings keep Python's reference counts right: PySide6 6.12.0 lost a reference to None on
every ``QModelIndex.data()`` of a Python model, and a long session (or the test suite) then aborted
at exit with "deallocating None". pyproject.toml excludes that release; this test keeps it so."""

import sys

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, Qt, Signal


class _EmptyModel(QAbstractTableModel):
    def rowCount(self, parent=QModelIndex()):  # noqa: N802 - Qt API
        return 1

    def columnCount(self, parent=QModelIndex()):  # noqa: N802 - Qt API
        return 1

    def data(self, index, role=Qt.DisplayRole):
        return None


class _Emitter(QObject):
    value = Signal(object)


def _none_refs_lost(action, n=2000) -> int:
    before = sys.getrefcount(None)
    for _ in range(n):
        action()
    return before - sys.getrefcount(None)


def test_reading_a_python_model_keeps_none_alive(qapp):
    model = _EmptyModel()
    assert _none_refs_lost(lambda: model.index(0, 0).data()) < 100
    assert _none_refs_lost(lambda: model.index(0, 0).data(Qt.ToolTipRole)) < 100


def test_signals_carrying_none_keep_it_alive(qapp):
    emitter, seen = _Emitter(), []
    emitter.value.connect(seen.append)
    assert _none_refs_lost(lambda: emitter.value.emit(None)) < 100
    assert len(seen) == 2000
