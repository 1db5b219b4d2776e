"""Panel sizes against their minimum size hints at 1366×768 and 1920×1080, with the Subjects dock and the
Ask-in-language tab open, on the embedded demo; writes a screenshot of each. Asserts nothing.

    .venv/bin/python tests/benchmarks/layout_fit.py OUT_DIR
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    from PySide6.QtCore import QSettings

    from brainview.paths import demo_bundle_path
    from brainview.qt.application import application
    from brainview.qt.main_window import QtMainWindow

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    app = application()
    for width, height in ((1366, 768), (1920, 1080)):
        settings = QSettings(str(Path(tempfile.mkdtemp()) / "settings.ini"), QSettings.IniFormat)
        window = QtMainWindow(device="cpu", settings=settings)
        window.score_on_open = False
        window.resize(width, height)
        window.show()
        window.open_bundle_now(demo_bundle_path())
        window.subjects_dock.show()
        window.show_panel(window.language_panel)
        for _ in range(5):
            app.processEvents()
        print(f"{width}x{height}: window {window.size().toTuple()}, its minimum {window.minimumSizeHint().toTuple()}")
        panels = {"Subjects dock": window.subjects_dock.widget(), "subjects panel": window.subjects_panel,
                  "trials": window.browser, "left tabs": window.left_tabs, "trial view": window.trial_view,
                  "plots": window.trial_view.plots, "cortex": window.cortex_view}
        for name, widget in panels.items():
            hint = widget.minimumSizeHint()
            cut = " CUT" if widget.width() < hint.width() else ""
            print(f"  {name:14s} {widget.width():5d} px wide, needs {hint.width():4d}{cut}")
        window.grab_with_cortex().save(str(out / f"window_{width}x{height}.png"))
        window.close()
        window.deleteLater()
        app.processEvents()


if __name__ == "__main__":
    main()
