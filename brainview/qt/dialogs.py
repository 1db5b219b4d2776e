"""The app's few dialogs in one place: errors, notices and the bundle chooser.

Tests replace ``QMessageBox.critical`` / ``information`` to record instead of blocking.
"""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from brainview.errors import UserError


def error_text(exc: BaseException) -> str:
    """One clear message for a user mistake; the type as well for anything unexpected."""
    if isinstance(exc, UserError):
        return str(exc)
    return f"Unexpected error ({type(exc).__name__}): {exc}"


def show_error(parent: QWidget | None, title: str, message: str) -> None:
    QMessageBox.critical(parent, title, message)


def show_notice(parent: QWidget | None, title: str, message: str) -> None:
    QMessageBox.information(parent, title, message)


def ask(parent: QWidget | None, title: str, message: str, yes: str, no: str) -> bool:
    """A question with two named answers; True for ``yes``."""
    box = QMessageBox(QMessageBox.Question, title, message, parent=parent)
    accept = box.addButton(yes, QMessageBox.AcceptRole)
    box.addButton(no, QMessageBox.RejectRole)
    box.exec()
    return box.clickedButton() is accept


def choose_bundle(parent: QWidget | None, start: str = "") -> str | None:
    """A directory chooser for a decoding bundle; None when cancelled."""
    path = QFileDialog.getExistingDirectory(parent, "Open a decoding bundle", start, QFileDialog.ShowDirsOnly)
    return path or None
