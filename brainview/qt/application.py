"""The process's one QApplication: created and styled in one place, for the window, the screenshot and the
off-screen figure export alike (which must not import the window to get it)."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

from brainview.paths import style_path


def application() -> QApplication:
    """The process's QApplication, created and styled once."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("brainview")
        app.setOrganizationName("brainview")
        app.setStyle("Fusion")
        style = style_path()
        if style.is_file():
            app.setStyleSheet(style.read_text(encoding="utf-8"))
    return app
