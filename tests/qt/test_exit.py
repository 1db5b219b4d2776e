"""The process ends within a second of its window closing, even with a worker that cannot stop at once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import sys, time
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from brainview.qt import app as qt_app

    qt_app.application()

    def close_once_loaded():
        from brainview.qt.main_window import QtMainWindow
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, QtMainWindow)]
        if not windows:  # the splash is up, the window not yet built
            QTimer.singleShot(50, close_once_loaded)
            return
        window = windows[0]

        def close():
            window.workers.start(time.sleep, 8)  # stands for a model load, which cannot stop at once
            window.roi_panel.set_checked(["V1"])  # live decoding in flight too
            print("closing", time.monotonic(), flush=True)
            window.close()

        window.models_loaded.connect(lambda: QTimer.singleShot(200, close))

    QTimer.singleShot(0, close_once_loaded)
    sys.exit(qt_app.run_app(sys.argv[1], device="cpu"))
""")


def test_the_process_exits_within_a_second_of_the_window_closing(app_bundle, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(app_bundle.path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = process.communicate(timeout=90)
    finally:
        process.kill()
    exited = time.monotonic()
    closing = [line for line in out.splitlines() if line.startswith("closing ")]
    assert process.returncode == 0 and closing, err[-2000:]
    assert exited - float(closing[0].split()[1]) < 1.0
