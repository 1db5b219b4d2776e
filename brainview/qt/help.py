"""Help menu: the keyboard and mouse shortcut table and the About box (versions and the device in use)."""

from __future__ import annotations

import sys
from importlib import metadata

from PySide6.QtCore import qVersion
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QMenu, QMessageBox, QTableWidget,
                               QTableWidgetItem, QVBoxLayout)

#: mouse gestures of the cortex view, listed with the window's keyboard shortcuts
MOUSE = (("Left drag", "Rotate the hemispheres (brush off) / paint (brush on)"),
         ("Right drag or Shift + left drag", "Erase (brush on)"),
         ("Click", "Pick a vertex: its voxel, value and ROIs in the status bar"),
         ("Wheel", "Zoom"),
         ("Drop a bundle folder or session file", "Open it"))


def versions(device: str) -> dict[str, str]:
    """Versions of brainview and the libraries that decide its results, and the device in use."""
    out = {}
    for name in ("brainview", "torch", "transformers", "vtk", "PySide6-Essentials", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["Qt"] = qVersion()
    out["Python"] = sys.version.split()[0]
    out["device"] = device
    return out


def shortcut_rows(window) -> list[tuple[str, str]]:
    """(keys, what) for every action of the window with a shortcut (all its key bindings), then the
    mouse gestures: built from the actions, so the list cannot drift from what the keys do."""
    rows = []
    for action in window.findChildren(QAction):
        keys = " or ".join(key.toString(QKeySequence.NativeText) for key in action.shortcuts())
        if keys and action.text():
            rows.append((keys, action.text().replace("&", "").rstrip("…")))
    return sorted(set(rows)) + list(MOUSE)


class QtShortcutTable(QDialog):
    def __init__(self, window):
        super().__init__(window)
        self.setWindowTitle("Keyboard and mouse shortcuts")
        rows = shortcut_rows(window)
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Keys", "Action"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        for i, (keys, what) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(keys))
            self.table.setItem(i, 1, QTableWidgetItem(what))
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        # wide and tall enough for every row: nothing cut, no horizontal scrolling
        width = self.table.horizontalHeader().length() + self.table.verticalScrollBar().sizeHint().width() + 40
        height = self.table.verticalHeader().length() + self.table.horizontalHeader().height() + 80
        screen = window.screen().availableGeometry() if window.screen() is not None else None
        self.resize(min(width, screen.width() - 40) if screen else width,
                    min(height, screen.height() - 80) if screen else height)


def about_text(device: str) -> str:
    rows = "".join(f"<tr><td>{k}</td><td>&nbsp;{v}</td></tr>" for k, v in versions(device).items())
    return ("<h3>brainview</h3><p>Explore fMRI-to-language decoding models: browse trials, hunt failures, "
            "paint ROIs and decode them live.</p><table>" + rows + "</table>")


def in_use(window) -> str:
    """The device the language models run on, or the one chosen when none are loaded."""
    return window.session.loaded_device if window.session.has_bundle else window.device


def add_help_menu(window) -> QMenu:
    menu = window.menuBar().addMenu("&Help")
    shortcuts = QAction("&Keyboard shortcuts", window, shortcut=QKeySequence.HelpContents)
    shortcuts.triggered.connect(lambda: QtShortcutTable(window).exec())
    about = QAction("&About brainview", window)
    about.triggered.connect(lambda: QMessageBox.about(window, "About brainview", about_text(in_use(window))))
    about.setMenuRole(QAction.AboutRole)
    menu.addActions([shortcuts, about])
    window.help_actions = {"shortcuts": shortcuts, "about": about}
    return menu
