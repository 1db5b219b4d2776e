"""App start (DESIGN.md §8): process start → splash, → main window, → bundle shown, → models loaded.

Each run is a fresh Python process (imports included), timed from the parent. The reference is
a bare ``QApplication`` + ``QWidget`` started the same way in the same script, so the ratio says
what brainview adds to the cost of any Qt window on this machine.

    .venv/bin/python tests/benchmarks/app_start.py [BUNDLE] [--runs 3]

Without BUNDLE it opens the embedded demo (``resources/demo``). Uses the offscreen platform
unless a display is set. Prints medians and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BARE = """
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget
app = QApplication([])
w = QWidget(); w.resize(1600, 1000); w.show()
QTimer.singleShot(0, lambda: (print("SHOWN", flush=True), app.quit()))
app.exec()
"""

APP = """
import sys
from PySide6.QtCore import QTimer
from brainview.qt.app import application, run_app
app = application()

def watch():
    # the first events are processed while the splash is up; then poll for the main window
    print("FIRST", flush=True)
    poll = QTimer(app, interval=5)

    def check():
        window = next((w for w in app.topLevelWidgets() if type(w).__name__ == "QtMainWindow" and w.isVisible()), None)
        if window is not None:
            poll.stop()
            QTimer.singleShot(0, lambda: print("SHOWN", flush=True))
            window.bundle_loaded.connect(lambda: print("BUNDLE", flush=True))
            window.models_loaded.connect(lambda: (print("MODELS", flush=True), window.close()))
            window.load_failed.connect(lambda message: (print("FAILED", message, flush=True), window.close()))

    poll.timeout.connect(check)
    poll.start()

QTimer.singleShot(0, watch)
run_app(sys.argv[1] if len(sys.argv) > 1 else None, device="cpu")
"""


def run(code: str, *args: str) -> dict[str, float]:
    """Seconds from spawning the process to each marker it prints."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, env=env, cwd=ROOT)
    marks = {}
    for line in process.stdout:
        marks[line.split()[0]] = time.perf_counter() - start
        if line.startswith("FAILED"):
            print(line.strip())
    process.wait(timeout=600)
    return marks


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", help="bundle folder (default: the embedded demo)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bundle_args = [args.bundle] if args.bundle else []
    bare = [run(BARE)["SHOWN"] for _ in range(args.runs)]
    app = [run(APP, *bundle_args) for _ in range(args.runs)]
    first = median([m["FIRST"] for m in app])
    shown = median([m["SHOWN"] for m in app])
    bundle = [m["BUNDLE"] for m in app if "BUNDLE" in m]
    models = [m["MODELS"] for m in app if "MODELS" in m]
    print(f"platform: {'xcb' if os.environ.get('DISPLAY') else 'offscreen'}, runs: {args.runs}, "
          f"bundle: {args.bundle or 'embedded demo'}")
    print(f"{'bare QApplication + QWidget shown:':<42}{median(bare):6.2f} s")
    print(f"{'brainview splash shown:':<42}{first:6.2f} s   ({first / median(bare):.1f}× bare)")
    print(f"{'brainview main window shown:':<42}{shown:6.2f} s   ({shown / median(bare):.1f}× bare)")
    for label, times in (("bundle shown (retrieval works)", bundle), ("language models loaded", models)):
        if times:
            seconds = median(times)
            print(f"{'brainview ' + label + ':':<42}{seconds:6.2f} s   ({seconds / median(bare):.1f}× bare)")
        else:
            print(f"brainview {label}: never (see the message above)")


if __name__ == "__main__":
    main()
