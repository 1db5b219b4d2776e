"""Live decoding (DESIGN.md §8): ROI checked → GUI thread free, → synthetic retrievals on screen,
→ caption on screen, CPU.

The app path is the real one: the ROI panel's checkbox → ``RoiSelection`` → request → worker →
``Session.iter_decode_synthetic`` (retrievals, then the caption token by token) → trial view updated. The
reference is the decode call alone (``Session.decode_synthetic``), measured in the same process;
the ratio is the app's overhead on top of decoding.

    .venv/bin/python tests/benchmarks/live_decode.py [BUNDLE] [--repeats 10]

Without BUNDLE it uses the embedded demo (``resources/demo``) or, when that is missing, a small
generated bundle with tiny BLIP-2 models (said in the output). Prints medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


class _TempDirs:
    """Stands in for pytest's ``tmp_path_factory`` when building the fallback bundle."""

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-"))


def bundle_path(requested: str | None) -> tuple[Path, str]:
    from brainview.paths import demo_bundle_path

    if requested:
        return Path(requested), requested
    if demo_bundle_path().exists():
        return demo_bundle_path(), "embedded demo"
    from tests.conftest import make_app_bundle

    return make_app_bundle(_TempDirs()).path, "generated test bundle (the demo is not built yet)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    from PySide6.QtCore import QEventLoop, Qt, QTimer

    from brainview.qt.application import application
    from brainview.qt.main_window import QtMainWindow

    path, what = bundle_path(args.bundle)
    app = application()
    window = QtMainWindow(device="cpu")
    window.resize(1600, 1000)
    window.show()
    window.open_bundle_now(path)
    session = window.session
    if not session.can_caption:
        print(f"captions are off ({session.captions_missing}); timing retrieval only")
    rois = list(session.bundle.rois)
    delay = window.live._timer.interval() / 1000

    session.decode_synthetic(session.bundle.roi_voxels(rois[0]))  # warm-up: the first generate is slower
    # paired: for each ROI the decode call alone, then the same change through the GUI, so drift on a
    # shared machine hits both sides alike
    decode, gui_busy, retrievals, first_words, on_screen, overlay = [], [], [], [], [], []
    marks = {}

    def shown(kind, result) -> None:  # runs after the window's own handler has put the result in the trial view
        window.trial_view.synthetic_box.repaint()
        marks.setdefault(kind, time.perf_counter())

    window.live.partial.connect(lambda result: shown("partial", result))
    window.live.partial.connect(lambda result: result.decoded.caption and shown("first words", result))
    window.live.result.connect(lambda result: shown("result", result))
    loop = QEventLoop()
    window.live.result.connect(loop.quit, Qt.QueuedConnection)
    if not session.can_caption:
        window.live.partial.connect(loop.quit, Qt.QueuedConnection)
    for i in range(args.repeats):
        roi = rois[i % len(rois)]
        start = time.perf_counter()
        session.decode_synthetic(session.bundle.roi_voxels(roi))
        decode.append(time.perf_counter() - start)
        marks.clear()
        start = time.perf_counter()
        window.roi_panel.set_checked([roi])  # every listener of the change runs inside this call
        gui_busy.append(time.perf_counter() - start)
        loop.exec()  # idle in an event loop, as the app does, until the result is shown
        assert window.trial_view.synthetic is not None
        retrievals.append(marks["partial"] - start)
        first_words.append(marks.get("first words", marks.get("result", marks["partial"])) - start)
        on_screen.append(marks.get("result", marks["partial"]) - start)
        QTimer.singleShot(300, loop.quit)  # let the overlay recolouring that follows a result finish
        loop.exec()
        begin = time.perf_counter()
        window.cortex_shows.update()  # the recolouring that follows a result, on the GUI thread
        overlay.append(time.perf_counter() - begin)
        window.roi_panel.set_checked([])
        QTimer.singleShot(300, loop.quit)
        loop.exec()

    window.close()
    decode, gui_busy, retrievals, first_words, on_screen, overlay = (
        np.array(v) for v in (decode, gui_busy, retrievals, first_words, on_screen, overlay))
    ms = lambda values: 1000 * float(np.median(values))  # noqa: E731
    print(f"bundle: {what}; {session.n_trials} trials, {session.bundle.n_voxels} voxels, "
          f"{session.cortex.n_vertices} vertices; CPU; {args.repeats} ROI changes over {len(rois)} ROIs; "
          "medians, ratios paired per change")
    print(f"decode call alone (caption + retrievals):  {ms(decode):8.1f} ms")
    print(f"ROI checked → GUI thread free again:       {ms(gui_busy):8.1f} ms  (every listener of the change)")
    print(f"ROI checked → synthetic retrievals shown:  {ms(retrievals):8.1f} ms  "
          f"({np.median(retrievals / decode):.2f}× decode)")
    print(f"ROI checked → first caption words shown:  {ms(first_words):8.1f} ms  "
          f"({np.median(first_words / decode):.2f}× decode; the caption streams in from there)")
    print(f"ROI checked → caption painted:             {ms(on_screen):8.1f} ms  "
          f"({np.median(on_screen / decode):.2f}× decode)")
    print(f"overlay recoloured after the result (GUI): {ms(overlay):8.1f} ms")


if __name__ == "__main__":
    main()
