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
    from brainview.qt.main_window import demo_bundle_path

    if requested:
        return Path(requested), requested
    if demo_bundle_path().exists():
        return demo_bundle_path(), "embedded demo"
    from tests.qt.conftest import make_app_bundle

    return make_app_bundle(_TempDirs()).path, "generated test bundle (the demo is not built yet)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

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
    decode = []
    for i in range(args.repeats):
        voxels = session.bundle.roi_voxels(rois[i % len(rois)])
        start = time.perf_counter()
        session.decode_synthetic(voxels)
        decode.append(time.perf_counter() - start)

    on_screen, done = [], []
    window.live.result.connect(lambda result: done.append(time.perf_counter()))
    for i in range(args.repeats):
        roi = rois[i % len(rois)]
        done.clear()
        start = time.perf_counter()
        window.roi_panel.set_checked([roi])
        while not done:
            app.processEvents()
            time.sleep(0.001)
        app.processEvents()  # the trial view repaints with the new caption
        assert window.trial_view.synthetic is not None
        on_screen.append(time.perf_counter() - start)
        window.roi_panel.set_checked([])
        app.processEvents()

    window.close()
    decode_ms, screen_ms = 1000 * np.median(decode), 1000 * np.median(on_screen)
    print(f"bundle: {what}; {session.n_trials} trials, {session.bundle.n_voxels} voxels; CPU; "
          f"{args.repeats} ROI changes over {len(rois)} ROIs")
    print(f"decode call alone (caption + retrievals): {decode_ms:8.1f} ms")
    print(f"ROI checked → caption on screen:          {screen_ms:8.1f} ms  ({screen_ms / decode_ms:.2f}× decode)")
    print(f"  without the {1000 * delay:.0f} ms debounce:             {screen_ms - 1000 * delay:8.1f} ms  "
          f"({(screen_ms - 1000 * delay) / decode_ms:.2f}× decode)")


if __name__ == "__main__":
    main()
