"""Brush stroke -> repainted surface at fsaverage resolution (DESIGN.md §8), with in-process references.

Two icospheres of 7 subdivisions (163,842 vertices each, like fsaverage) in a QtCortexView,
every vertex its own voxel (the worst case for the voxel side). A stroke of dabs crosses the
left hemisphere; each dab goes the way a mouse move does: pick the vertex under the cursor,
geodesic brush, ``RoiSelection.paint``, incremental recolouring, render. References measured in
the same process: a naive Euclidean-radius brush and Dijkstra without a limit (for the brush),
recolouring every vertex (for the colour update), and rendering an unchanged scene (the floor).
Where full-detail frames are slow (software OpenGL), the view draws the stroke on its coarse copies
(level of detail, ``brainview.qt.cortex_render``) and full detail comes back at rest; both are timed.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/benchmarks/brush.py [--radius 5] [--dabs 12] [--vertices 227000]

Prints medians and ratios; asserts nothing.
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
import scipy.sparse as sp  # noqa: E402
from scipy.sparse.csgraph import dijkstra  # noqa: E402


def timed(function, repeats: int) -> float:
    """Median wall time of ``function()`` in milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def build_cortex(n_vertices: int | None = None):
    """Two hemispheres: icospheres of 163,842 vertices, or ``n_vertices`` each (a native surface size,
    e.g. 227,000) as in ``nsd_scale.py``."""
    from brainview.cortex import Cortex
    from tests.benchmarks.nsd_scale import sphere
    from tests.factories import icosphere

    mesh = {}
    for hemi, x in (("lh", -75.0), ("rh", 75.0)):
        vertices, faces = (icosphere(7, 70.0, (x, 0.0, 0.0)) if n_vertices is None
                           else sphere(n_vertices, 70.0, (x, 0.0, 0.0)))
        mesh[hemi] = {"inflated": vertices, "pial": vertices * 0.95, "faces": faces,
                      "sulc": np.sin(vertices[:, 2] / 6).astype(np.float32)}
    n = sum(m["inflated"].shape[0] for m in mesh.values())
    return Cortex(mesh, sp.identity(n, format="csr", dtype=np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--radius", type=float, default=5.0, help="brush radius in mm")
    parser.add_argument("--dabs", type=int, default=12, help="dabs per stroke")
    parser.add_argument("--size", type=int, nargs=2, default=(1000, 520), help="view size in pixels")
    parser.add_argument("--vertices", type=int, help="vertices per hemisphere (default: fsaverage's 163,842; "
                                                       "native NSD surfaces: 227000)")
    args = parser.parse_args()

    from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from brainview.cortex import RoiSelection
    from brainview.qt.cortex_view import QtCortexView

    app = QApplication.instance() or QApplication([])
    start = time.perf_counter()
    cortex = build_cortex(args.vertices)
    lh = cortex.hemis["lh"]
    print(f"mesh: 2 x {lh.n_vertices:,} vertices, {lh.faces.shape[0]:,} faces per hemisphere "
          f"(built in {time.perf_counter() - start:.1f} s); brush radius {args.radius} mm; "
          f"Qt platform {app.platformName()}")

    view = QtCortexView()
    view.resize(*args.size)
    view.show()
    app.processEvents()
    start = time.perf_counter()
    view.set_cortex(cortex)
    selection = RoiSelection(cortex)
    view.set_selection_model(selection)
    view.set_overlay(np.concatenate([h.inflated[:, 1] for h in cortex.hemis.values()]) / 70.0, threshold=0.2)
    view.render_now()
    print(f"set_cortex + overlay + first render: {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    view.set_brush_enabled(True)  # builds the edge graphs
    view.set_brush_radius(args.radius)
    print(f"brush warm-up (edge graphs of both hemispheres): {time.perf_counter() - start:.2f} s")

    area = view._vtk
    y = area.height() // 2
    positions = [QPoint(int(x), y) for x in np.linspace(area.width() * 0.15, area.width() * 0.35, args.dabs)]
    hits = [view.pick(p) for p in positions]
    hits = [h for h in hits if h is not None]
    assert hits, "the stroke missed the surface"
    center = hits[len(hits) // 2][1]

    # -- the dab pipeline, stage by stage ----------------------------------------------------------
    repeats = 15
    xyz = lh.inflated
    graph = lh.edge_graph("inflated")
    ids = cortex.brush_vertices("lh", center, args.radius)
    t_pick = timed(lambda: view.pick(positions[len(positions) // 2]), repeats)
    t_brush = timed(lambda: cortex.brush_vertices("lh", center, args.radius), repeats)
    t_euclid = timed(lambda: np.flatnonzero(np.linalg.norm(xyz - xyz[center], axis=1) <= args.radius), repeats)
    t_unlimited = timed(lambda: np.flatnonzero(dijkstra(graph, indices=center) <= args.radius), 3)

    selection.disconnect(view._on_selection_changed)  # time the model and the view update apart
    erase = [False]

    def paint_model():
        erase[0] = not erase[0]
        selection.paint(ids, erase=erase[0])
    t_paint = timed(paint_model, repeats)
    update_times = []
    for _ in range(repeats):
        paint_model()
        begin = time.perf_counter()
        view._on_selection_changed(selection)
        update_times.append(time.perf_counter() - begin)
    t_update = 1000 * float(np.median(update_times))

    def recolour_everything():
        fill = cortex.roi_vertex_mask(selection.voxels())
        for hemi, scene in view._scenes.items():
            scene.fill[:] = fill[cortex.hemi_slice(hemi)]
            scene.compose()
    t_recolour_full = timed(recolour_everything, repeats)
    selection.on_change(view._on_selection_changed)
    t_render_idle = timed(view.render_now, 5)

    def full_recolour_and_render():
        recolour_everything()
        view.render_now()
    t_full_repaint = timed(full_recolour_and_render, 5)

    # -- whole strokes through the widget: dab -> repainted surface ---------------------------------
    # the press and release are mouse events (they start and end the stroke: coarse while it lasts where
    # full-detail frames are slow); each dab is what a mouse move does, then the event loop renders
    scheduler = view.renderer
    lod = "off: full-detail frames are fast enough" if not scheduler.slow else "on"
    if scheduler.slow:
        begin = time.perf_counter()
        while any(s.coarse is None for s in view.scenes.values()) and time.perf_counter() - begin < 60:
            app.processEvents()  # the coarse copies are built in a worker after the first slow frame
            time.sleep(0.01)
        sizes = [s.coarse.n_vertices for s in view.scenes.values() if s.coarse is not None]
        lod = f"on: coarse copies of {sizes} vertices, ready {time.perf_counter() - begin:.1f} s after set-up"
    view.set_brush_enabled(True)

    def mouse(kind, position, button, buttons):
        event = QMouseEvent(kind, QPointF(position), QPointF(area.mapToGlobal(position)), button, buttons,
                            Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(area, event)

    def settle(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.005)

    dab_cpu, dab_total, t_coarse_idle, rest = [], [], [], []
    LEFT, NONE = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    for _ in range(2):
        selection.clear()
        view.render_now()
        mouse(QEvent.Type.MouseButtonPress, positions[0], LEFT, LEFT)
        app.processEvents()
        for position in positions[1:]:
            begin = time.perf_counter()
            view._dab(position)  # pick, brush, paint, recolour (what a mouse move does)
            middle = time.perf_counter()
            app.processEvents()  # the render it asked for
            dab_cpu.append(middle - begin)
            dab_total.append(time.perf_counter() - begin)
        t_coarse_idle.append(timed(lambda: (scheduler.request(), app.processEvents()), 3))
        mouse(QEvent.Type.MouseButtonRelease, positions[-1], LEFT, NONE)
        begin = time.perf_counter()
        while scheduler.slow and scheduler.coarse:  # at rest the view switches back to full detail ...
            app.processEvents()
            time.sleep(0.002)
        frames = scheduler.frames
        while scheduler.slow and scheduler.frames == frames:  # ... and renders one full frame
            app.processEvents()
            time.sleep(0.002)
        rest.append(time.perf_counter() - begin)
        settle(0.2)
    t_dab_cpu = 1000 * float(np.median(dab_cpu))
    t_dab = 1000 * float(np.median(dab_total))
    painted = selection.painted_vertices().size

    print(f"\nper dab (median ms; {ids.size} vertices under a {args.radius} mm brush):")
    rows = [
        ("pick (ray through the static cell locator of the full mesh)", t_pick),
        ("geodesic brush (Dijkstra with limit=radius)", t_brush),
        ("  reference: naive Euclidean-radius brush (full scan)", t_euclid),
        ("  reference: Dijkstra without limit, then threshold", t_unlimited),
        ("RoiSelection.paint", t_paint),
        ("view update: selection -> changed vertex colours", t_update),
        ("  reference: recolour every vertex of both hemispheres", t_recolour_full),
        ("dab without rendering (pick+brush+paint+update)", t_dab_cpu),
        ("render, nothing changed", t_render_idle),
        ("  during a stroke: render request, nothing changed", float(np.median(t_coarse_idle))),
        ("dab -> repainted surface (dab + render)", t_dab),
        ("release -> full detail on screen again (rest + full frame)", 1000 * float(np.median(rest))),
        ("  reference: recolour everything + render", t_full_repaint),
    ]
    for name, value in rows:
        print(f"  {name:<58s} {value:9.2f}")
    print("\nratios:")
    print(f"  geodesic brush / naive Euclidean brush:          {t_brush / t_euclid:7.2f}x")
    print(f"  geodesic brush / Dijkstra without limit:         {t_brush / t_unlimited:7.3f}x")
    print(f"  incremental view update / full recolouring:      {t_update / t_recolour_full:7.3f}x")
    print(f"  dab without rendering / idle render:             {t_dab_cpu / t_render_idle:7.4f}x")
    print(f"  dab -> repainted / recolour everything + render: {t_dab / t_full_repaint:7.3f}x")
    print(f"  dab -> repainted / idle full-detail render:      {t_dab / t_render_idle:7.3f}x")
    print(f"  one stroke painted {painted} vertices in {len(positions)} dabs; level of detail {lod}; "
          f"load average {os.getloadavg()[0]:.1f}")
    view.close()
    view.deleteLater()
    app.processEvents()


if __name__ == "__main__":
    main()
