"""Entry points of the desktop app: ``run_app`` (the window) and ``screenshot`` (render and exit).

Only PySide6 is imported at module level: ``run_app`` puts a splash on screen before the heavy
imports (pyqtgraph, VTK, scipy, the core), so something appears at once.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QThreadPool, QTimer
from PySide6.QtGui import QColor, QFont, QPainter, QPixmap
from PySide6.QtWidgets import QSplashScreen

from brainview.paths import demo_bundle_path
from brainview.qt.application import application


def _splash() -> QSplashScreen:
    pixmap = QPixmap(420, 140)
    pixmap.fill(QColor("#262930"))
    painter = QPainter(pixmap)
    painter.setPen(QColor("#e6e8eb"))
    painter.setFont(QFont("Sans", 22, QFont.DemiBold))
    painter.drawText(pixmap.rect().adjusted(0, -20, 0, 0), Qt.AlignCenter, "brainview")
    painter.setPen(QColor("#8f96a0"))
    painter.setFont(QFont("Sans", 10))
    painter.drawText(pixmap.rect().adjusted(0, 50, 0, 0), Qt.AlignCenter, "starting…")
    painter.end()
    return QSplashScreen(pixmap)


def run_app(path: str | None = None, device: str | None = None, captions: tuple[str, ...] = ()) -> int:
    """Show the window at once and open ``path`` (a bundle or a session file; default: the embedded demo)
    in the background. ``device`` None: the one used last. ``captions``: other models' ``NAME=FILE``."""
    app = application()
    splash = _splash()
    splash.show()
    app.processEvents()
    from brainview.qt.main_window import QtMainWindow

    window = QtMainWindow(device=device)
    window.show()
    splash.finish(window)
    if captions:
        window.other_models.add_when_opened(list(captions))
    target = Path(path) if path is not None else demo_bundle_path()
    if path is None and not target.exists():
        window.show_message(f"The embedded demo bundle is not installed ({target}). "
                            "Open a decoding bundle with File → Open.")
    else:
        QTimer.singleShot(0, lambda: window.open_path(target))
    code = app.exec()
    return leave(code)


def leave(code: int) -> int:
    """``code``, or end the process now when workers still run after the window closed (they were told
    to stop; one loading a model or inside a long step cannot stop at once): their results have nowhere
    to go, files are written atomically, and Qt's thread pool would otherwise hold the exit for seconds."""
    if QThreadPool.globalInstance().activeThreadCount():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def screenshot(path: str | None, out_png: str, size: tuple[int, int] = (1600, 1000), device: str = "cpu",
               rois: tuple[str, ...] = (), captions: tuple[str, ...] = ()) -> None:
    """Render the window on a bundle, with the cortex showing the current trial's pattern, its captions
    and (when ``rois`` are named) their synthetic decoding, and write a PNG. Raises ``UserError`` for a
    broken bundle or an unknown ROI. For a study, the first subject with the subjects panel filled in (the
    ``rois``, or every category ROI, decoded in every subject). ``captions``: other models' ``NAME=FILE``,
    shown beside the stages, the trial table sorted by the first minus the second."""
    from brainview.analysis.study import is_study, load_study
    from brainview.errors import UserError
    from brainview.qt.main_window import QtMainWindow

    app = application()
    scratch = tempfile.TemporaryDirectory(prefix="brainview-screenshot-")
    # a screenshot neither reads nor changes the user's preferences (window size, colormap, ...)
    settings = QSettings(str(Path(scratch.name) / "settings.ini"), QSettings.IniFormat)
    window = QtMainWindow(device=device, settings=settings)
    try:
        window.resize(*size)
        window.show()
        study = load_study(path) if path is not None and is_study(path) else None
        if study is not None:
            path = study.subject(study.ids[0]).path
        window.open_bundle_now(path if path is not None else demo_bundle_path())
        session = window.session
        while window.trial_captioner.busy:  # the window captions the trial itself: wait for it, never twice
            app.processEvents()
            time.sleep(0.005)
        if captions:
            window.other_models.add_now(list(captions))
            window.browser.sort_by_difference()
        if rois:
            unknown = [name for name in rois if name not in session.bundle.rois]
            if unknown:
                raise UserError(f"unknown ROI {unknown[0]!r}; this bundle has {', '.join(session.bundle.rois)}")
            window.roi_panel.set_checked(rois)
            window.live.cancel()
            result = session.decode_synthetic(session.selection.voxels())
            window.trial_view.set_synthetic(result, window.synthetic_label(result))
            window.cortex_shows.choose("trial")  # a coloured brain; the selection shows as its fill
        if study is not None:  # the subjects panel filled in, with the ROIs decoded in every subject
            window.subjects_panel.set_study(study)
            window.subjects_panel.show_now(rois or tuple(name for name in session.bundle.rois
                                                         if name.startswith("floc-")))
        for _ in range(3):
            app.processEvents()
        image = window.grab_with_cortex()
        Path(out_png).parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(out_png), "PNG"):
            raise OSError(f"could not write {out_png}")
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()
        scratch.cleanup()
