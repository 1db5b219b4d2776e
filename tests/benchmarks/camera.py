"""Camera drag -> repainted frame on a native-size cortex (DESIGN.md §8), with in-process references.

Two hemispheres of ``--vertices`` each (default 227,000: a native NSD surface) in a QtCortexView
at ``--size``. A left drag over the left hemisphere turns its camera the way a user does: mouse
events sent to the VTK area, VTK's trackball style, one render per move. Measured: the time per
mouse move (the frame the user waits for), the frame after the drag ends, and the frame once the
view has come to rest (full detail). References in the same process: rendering the unchanged
scene at full detail, and an empty render window of the same size (the cost of clearing and
showing the pixels alone).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/benchmarks/camera.py [--vertices 227000] [--moves 20]

Prints medians and ratios; asserts nothing. Runs on older checkouts too (it drives only mouse events).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vertices", type=int, default=227000, help="vertices per hemisphere")
    parser.add_argument("--moves", type=int, default=20, help="mouse moves per drag")
    parser.add_argument("--size", type=int, nargs=2, default=(1000, 520), help="view size in pixels")
    args = parser.parse_args()

    from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication
    from vtkmodules.vtkRenderingCore import vtkRenderer

    from brainview.cortex import RoiSelection
    from brainview.qt.cortex_view import QtCortexView
    from brainview.qt.vtk_offscreen import make_render_window
    from tests.benchmarks.brush import build_cortex

    app = QApplication.instance() or QApplication([])
    cortex = build_cortex(args.vertices)
    view = QtCortexView()
    view.resize(*args.size)
    view.show()
    app.processEvents()
    view.set_cortex(cortex)
    view.set_selection_model(RoiSelection(cortex))
    view.set_overlay(np.concatenate([h.inflated[:, 1] for h in cortex.hemis.values()]) / 70.0, threshold=0.2)
    view.render_now()

    def settle(seconds: float) -> None:
        """Run the event loop for ``seconds`` (deferred renders, a level of detail built in a worker)."""
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.01)

    settle(1.0)
    scheduler = getattr(view, "renderer", None)  # the render scheduler (absent on older checkouts)
    lod = "none (older code)"
    if scheduler is not None:
        begin = time.perf_counter()
        while (scheduler.slow and any(s.coarse is None for s in view.scenes.values())
               and time.perf_counter() - begin < 60):
            settle(0.05)  # the coarse copies are built in a worker after the first slow frame
        sizes = [s.coarse.n_vertices for s in view.scenes.values() if s.coarse is not None]
        lod = f"coarse copies of {sizes} vertices" if scheduler.slow else "off: full-detail frames are fast"
    full = []
    for _ in range(3):
        begin = time.perf_counter()
        view.render_now()
        full.append(time.perf_counter() - begin)
    bare = make_render_window()
    bare.SetSize(*view._rw.GetSize())
    bare.AddRenderer(vtkRenderer())
    bare.Render()
    empty = []
    for _ in range(3):
        begin = time.perf_counter()
        bare.Render()
        empty.append(time.perf_counter() - begin)

    area = view._vtk
    LEFT, NONE = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton

    def send(kind, position, button, buttons):
        event = QMouseEvent(kind, QPointF(position), QPointF(area.mapToGlobal(position)), button, buttons,
                            Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(area, event)

    moves, after_release, rest = [], [], []
    for _ in range(2):
        start = QPoint(area.width() // 4, area.height() // 2)
        send(QEvent.Type.MouseButtonPress, start, LEFT, LEFT)
        app.processEvents()
        for k in range(1, args.moves + 1):
            begin = time.perf_counter()
            send(QEvent.Type.MouseMove, start + QPoint(6 * k, 2 * k), NONE, LEFT)  # VTK renders inside
            app.processEvents()  # and whatever the view deferred to the event loop
            moves.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        send(QEvent.Type.MouseButtonRelease, start + QPoint(6 * args.moves, 2 * args.moves), LEFT, NONE)
        app.processEvents()
        after_release.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        settle(1.5)  # the view comes to rest: full detail again (one render)
        rest.append(time.perf_counter() - begin - 1.5)

    ms = lambda values: 1000 * float(np.median(values))  # noqa: E731
    lh = cortex.hemis["lh"]
    print(f"mesh: 2 x {lh.n_vertices:,} vertices, {lh.faces.shape[0]:,} faces; view {args.size[0]}x{args.size[1]}; "
          f"Qt platform {app.platformName()}; level of detail: {lod}; load average {os.getloadavg()[0]:.1f}")
    print(f"  {'reference: full-detail render, nothing changed':<52s} {ms(full):9.1f} ms")
    print(f"  {'reference: empty render window of the same size':<52s} {ms(empty):9.1f} ms")
    print(f"  {'camera drag: one mouse move -> frame':<52s} {ms(moves):9.1f} ms")
    print(f"  {'release -> back in the event loop':<52s} {ms(after_release):9.1f} ms")
    print(f"  {'at rest: extra time spent rendering (full detail)':<52s} {ms(rest):9.1f} ms")
    print("ratios:")
    print(f"  move frame / full-detail render:  {ms(moves) / ms(full):7.3f}x")
    print(f"  move frame / empty render:        {ms(moves) / ms(empty):7.3f}x")
    view.close()
    view.deleteLater()
    app.processEvents()


if __name__ == "__main__":
    main()
