"""Live decoding (DESIGN.md §8): ROI checked → synthetic caption and retrievals on screen, CPU.

The app path is the real one: the ROI panel's checkbox → ``RoiSelection`` → debounced request →
worker → ``Session.decode_synthetic`` → trial view updated. The reference is the decode call
alone (``Session.decode_synthetic``), measured in the same process; the ratio is the app's
overhead on top of decoding, with and without the deliberate 150 ms debounce.

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

    from brainview.qt.app import application
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
    decode, on_screen, in_worker, before_launch, done, started = [], [], [], [], [], []
    window.live.started.connect(lambda: started.append(time.perf_counter()))

    def shown(result) -> None:  # runs after the window's own handler has put the result in the trial view
        window.trial_view.synthetic_box.repaint()
        done.append(time.perf_counter())

    window.live.result.connect(shown)
    loop = QEventLoop()
    window.live.result.connect(loop.quit, Qt.QueuedConnection)
    for i in range(args.repeats):
        roi = rois[i % len(rois)]
        start = time.perf_counter()
        session.decode_synthetic(session.bundle.roi_voxels(roi))
        decode.append(time.perf_counter() - start)
        done.clear()
        started.clear()
        start = time.perf_counter()
        window.roi_panel.set_checked([roi])
        loop.exec()  # idle in an event loop, as the app does, until the result is shown
        assert window.trial_view.synthetic is not None
        on_screen.append(done[0] - start)
        in_worker.append(done[0] - started[0])
        before_launch.append(started[0] - start - delay)
        window.roi_panel.set_checked([])
        QTimer.singleShot(300, loop.quit)  # let the overlay recolouring that follows a result finish
        loop.exec()

    window.close()
    decode, on_screen, in_worker, before_launch = (np.array(v) for v in (decode, on_screen, in_worker, before_launch))
    ms = lambda values: 1000 * float(np.median(values))  # noqa: E731
    print(f"bundle: {what}; {session.n_trials} trials, {session.bundle.n_voxels} voxels; CPU; "
          f"{args.repeats} ROI changes over {len(rois)} ROIs; medians, ratios paired per change")
    print(f"decode call alone (caption + retrievals): {ms(decode):8.1f} ms")
    print(f"ROI checked → caption painted:            {ms(on_screen):8.1f} ms  "
          f"({np.median(on_screen / decode):.2f}× decode)")
    print(f"  without the {1000 * delay:.0f} ms debounce:             {ms(on_screen - delay):8.1f} ms  "
          f"({np.median((on_screen - delay) / decode):.2f}× decode)")
    print(f"  GUI thread work delaying the launch:    {ms(before_launch):8.1f} ms  "
          "(the selection's listeners: ROI panel, cortex fill and render)")
    print(f"  worker launched → caption painted:      {ms(in_worker):8.1f} ms  "
          f"({np.median(in_worker / decode):.2f}× decode)")


if __name__ == "__main__":
    main()
