"""App start (DESIGN.md §8): process start → splash, → main window, → first trial shown with its
retrievals, → every trial's rank filled in, → models loaded; and the app's peak memory.

Each run is a fresh Python process (imports included), timed from the parent. The reference is
a bare ``QApplication`` + ``QWidget`` started the same way in the same script, so the ratio says
what brainview adds to the cost of any Qt window on this machine. Peak memory is the child's
maximum resident set (``wait4``), memory-mapped bundle pages included.

    .venv/bin/python tests/benchmarks/app_start.py [BUNDLE] [--runs 3] [--code CHECKOUT]

``--code`` runs the brainview of another checkout (a "before" figure on older code).

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
from brainview.qt.app import run_app
from brainview.qt.application import application
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
            seen = set()

            def mark(what):  # the first time; close once the models are in and every rank is filled
                if what not in seen:
                    seen.add(what)
                    print(what, flush=True)
                if {"MODELS", "RANKS"} <= seen:
                    window.close()

            def scores(session):
                if getattr(session, "ranks_ready", True) and "image_rank" in session.scores.get(session.stage, {}):
                    mark("RANKS")
            window.bundle_loaded.connect(lambda: mark("BUNDLE"))
            window.bundle_loaded.connect(lambda: scores(window.session))
            window.session.connect("scores", scores)
            window.models_loaded.connect(lambda: mark("MODELS"))
            window.load_failed.connect(lambda message: (print("FAILED", message, flush=True), window.close()))

    poll.timeout.connect(check)
    poll.start()

QTimer.singleShot(0, watch)
run_app(sys.argv[1] if len(sys.argv) > 1 else None, device="cpu")
"""


def run(code: str, *args: str, root: Path = ROOT) -> dict[str, float]:
    """Seconds from spawning the process to each marker it prints (the first time), and its peak
    memory in GiB under "RSS"."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, env=env, cwd=root)
    marks = {}
    for line in process.stdout:
        marks.setdefault(line.split()[0], time.perf_counter() - start)
        if line.startswith("FAILED"):
            print(line.strip())
    _, _, usage = os.wait4(process.pid, 0)
    marks["RSS"] = usage.ru_maxrss / 2**20  # kB on Linux
    return marks


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", help="bundle folder (default: the embedded demo)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose brainview to run (default: this one)")
    args = parser.parse_args()
    bundle_args = [str(Path(args.bundle).absolute())] if args.bundle else []
    bare_runs = [run(BARE) for _ in range(args.runs)]
    bare = [m["SHOWN"] for m in bare_runs]
    app = [run(APP, *bundle_args, root=args.code.absolute()) for _ in range(args.runs)]
    first = median([m["FIRST"] for m in app])
    shown = median([m["SHOWN"] for m in app])
    bundle = [m["BUNDLE"] for m in app if "BUNDLE" in m]
    models = [m["MODELS"] for m in app if "MODELS" in m]
    print(f"platform: {'xcb' if os.environ.get('DISPLAY') else 'offscreen'}, runs: {args.runs}, "
          f"bundle: {args.bundle or 'embedded demo'}, code: {args.code}")
    print(f"{'bare QApplication + QWidget shown:':<48}{median(bare):6.2f} s")
    print(f"{'brainview splash shown:':<48}{first:6.2f} s   ({first / median(bare):.1f}× bare)")
    print(f"{'brainview main window shown:':<48}{shown:6.2f} s   ({shown / median(bare):.1f}× bare)")
    ranks = [m["RANKS"] for m in app if "RANKS" in m]
    for label, times in (("first trial shown with retrievals", bundle), ("every trial's rank filled", ranks),
                         ("language models loaded", models)):
        if times:
            seconds = median(times)
            print(f"{'brainview ' + label + ':':<48}{seconds:6.2f} s   ({seconds / median(bare):.1f}× bare)")
        else:
            print(f"brainview {label}: never (see the message above)")
    rss, bare_rss = median([m["RSS"] for m in app]), median([m["RSS"] for m in bare_runs])
    print(f"{'peak memory, bare window:':<48}{bare_rss:6.2f} GiB")
    print(f"{'peak memory, brainview:':<48}{rss:6.2f} GiB   ({rss / bare_rss:.1f}× bare)")


if __name__ == "__main__":
    main()
