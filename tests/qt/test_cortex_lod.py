"""Level of detail and render scheduling in the cortex view: coarse while moving where frames are slow (the
"slow" decision forced here), full detail at rest, exact picks whatever is drawn, one render per turn."""

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from brainview.cortex import Cortex
from brainview.qt.cortex_view import QtCortexView
from tests.factories import make_bundle
from tests.qt.test_cortex_view import LEFT, NONE, drag, lh_center, send, shown_view


@pytest.fixture(scope="module")
def cortex(tmp_path_factory):
    return Cortex.from_bundle(make_bundle(tmp_path_factory.mktemp("b") / "bundle", subdivisions=4, n_voxels=60))


def slow_view(qtbot, cortex):
    """A view whose full-detail frames count as slow, with small coarse copies and a short rest."""
    view = shown_view(qtbot, cortex)
    view.renderer.force_slow = True
    view.renderer.lod_vertices = 300
    view.renderer.rest_timer.setInterval(30)
    return view


def wait_for_coarse_copies(qtbot, view):
    view.renderer.request()  # slow: asks for the coarse copies, built in a worker
    qtbot.waitUntil(lambda: all(s.coarse is not None for s in view.scenes.values()), timeout=10000)
    qtbot.waitUntil(lambda: not view.renderer.coarse, timeout=5000)  # and comes to rest


def test_a_camera_drag_draws_the_coarse_copy_and_full_detail_comes_back_at_rest(qtbot, cortex):
    view = slow_view(qtbot, cortex)
    wait_for_coarse_copies(qtbot, view)
    lh = view.scenes["lh"]
    assert 200 <= lh.coarse.n_vertices <= 400 < lh.mesh.n_vertices
    start = lh_center(view)
    send(view, QEvent.Type.MouseButtonPress, start, LEFT, LEFT)
    send(view, QEvent.Type.MouseMove, start + QPoint(20, 5), NONE, LEFT)
    assert view.renderer.coarse and lh.showing_coarse and not lh.actor.GetVisibility()
    moving = view.render_to_image  # (render_to_image renders full detail: checked below, after the drag)
    send(view, QEvent.Type.MouseMove, start + QPoint(40, 10), NONE, LEFT)
    send(view, QEvent.Type.MouseButtonRelease, start + QPoint(40, 10), LEFT, NONE)
    assert view.renderer.coarse  # the release itself still draws coarse
    qtbot.waitUntil(lambda: not view.renderer.coarse, timeout=3000)
    assert lh.actor.GetVisibility() and not lh.coarse_actor.GetVisibility()
    assert moving().shape[:2] == (view._vtk.height(), view._vtk.width())


def test_a_fast_view_keeps_full_detail_while_the_camera_moves(qtbot, cortex):
    view = shown_view(qtbot, cortex)
    view.renderer.force_slow = False
    view.renderer.lod_vertices = 300
    drag(view, lh_center(view), lh_center(view) + QPoint(40, 10), LEFT)
    qtbot.wait(50)
    assert not view.renderer.coarse and all(s.coarse is None for s in view.scenes.values())


def test_measured_frame_time_decides(qtbot, cortex):
    view = shown_view(qtbot, cortex)
    scheduler = view.renderer
    assert scheduler.force_slow is None and scheduler.full_frame_ms is not None
    scheduler._full_ms.extend([500.0, 500.0, 500.0])  # what software OpenGL takes at native size
    assert scheduler.slow
    scheduler._full_ms.extend([5.0, 5.0, 5.0])  # a GPU
    assert not scheduler.slow


def test_picks_during_the_coarse_frame_hit_the_full_mesh(qtbot, cortex):
    view = slow_view(qtbot, cortex)
    wait_for_coarse_copies(qtbot, view)
    area = view._vtk
    positions = [QPoint(int(x), int(y)) for x in np.linspace(area.width() * 0.1, area.width() * 0.4, 6)
                 for y in np.linspace(area.height() * 0.3, area.height() * 0.7, 4)]
    full = [view.pick(p) for p in positions]
    view.renderer.begin_motion()
    view.renderer._render()
    assert view.renderer.coarse
    assert [view.pick(p) for p in positions] == full
    kept = set(view.scenes["lh"].coarse.vertex_map.tolist())
    hits = [v for hit in full if hit is not None for v in [hit[1]]]
    assert len(hits) >= 12 and any(v not in kept for v in hits)  # full-resolution vertices, not coarse ones
    view.renderer.end_motion()


def test_a_brush_stroke_is_drawn_coarse_and_the_coarse_colours_follow_incrementally(qtbot, cortex):
    view = slow_view(qtbot, cortex)
    wait_for_coarse_copies(qtbot, view)
    view.set_brush_radius(15.0)
    view.set_brush_enabled(True)
    lh = view.scenes["lh"]
    start = lh_center(view)
    send(view, QEvent.Type.MouseButtonPress, start, LEFT, LEFT)
    send(view, QEvent.Type.MouseMove, start + QPoint(15, 0), NONE, LEFT)
    assert view.renderer.coarse and lh.showing_coarse
    send(view, QEvent.Type.MouseButtonRelease, start + QPoint(15, 0), LEFT, NONE)
    assert lh.fill.any()
    np.testing.assert_array_equal(lh.coarse_colors(), lh.colors[lh.coarse.vertex_map])
    assert (lh.coarse_colors() != lh.coarse.carry(lh.layered_colors(fill=False))).any()  # the fill shows coarse
    view.set_overlay(np.linspace(-1, 1, cortex.n_vertices))  # an overlay change, also incremental
    np.testing.assert_array_equal(lh.coarse_colors(), lh.colors[lh.coarse.vertex_map])
    qtbot.waitUntil(lambda: not view.renderer.coarse, timeout=3000)


def test_full_detail_waits_while_held(qtbot, cortex):
    view = slow_view(qtbot, cortex)
    wait_for_coarse_copies(qtbot, view)
    view.hold_full_detail(True)
    view.set_overlay(np.linspace(-1, 1, cortex.n_vertices))
    qtbot.wait(150)  # five rest intervals
    assert view.renderer.coarse
    view.hold_full_detail(False)
    qtbot.waitUntil(lambda: not view.renderer.coarse, timeout=3000)


def test_many_changes_in_one_turn_render_once(qtbot, cortex):
    view = shown_view(qtbot, cortex)
    view.renderer.force_slow = False
    qtbot.wait(20)
    renders = []
    view._rw.AddObserver("StartEvent", lambda *_: renders.append(1))  # every render of the window, whoever asks
    values = np.linspace(-1, 1, cortex.n_vertices)
    for k in range(10):
        view.set_overlay(values * (k + 1))
        view.selection.replace(np.arange(k + 1))
        view.set_view("medial" if k % 2 else "lateral")
        view._vtk.repaint()  # a paint event of the VTK area (an expose) renders with the rest
    assert renders == []  # nothing rendered inside the changes
    qtbot.wait(50)
    assert len(renders) == 1


def test_waiting_widgets_paint_before_a_slow_full_detail_frame(qtbot, cortex):
    order = []

    class Label(QLabel):
        def paintEvent(self, event):  # noqa: N802 (Qt's name)
            order.append("label")
            super().paintEvent(event)

    holder = QWidget()  # a window with a result label next to the cortex, as the main window has
    qtbot.addWidget(holder)
    layout = QVBoxLayout(holder)
    label = Label("retrievals")
    view = QtCortexView()
    layout.addWidget(label)
    layout.addWidget(view)
    holder.resize(640, 480)
    holder.show()
    qtbot.waitExposed(holder)
    view.set_cortex(cortex)
    view.renderer.force_slow = True
    view.renderer.lod_vertices = 10 ** 6  # no coarse copy: every frame is a slow full-detail one
    qtbot.wait(50)
    view._rw.AddObserver("StartEvent", lambda *_: order.append("render"))
    order.clear()
    label.setText("new retrievals")  # a result arrived, and in the same handler a full frame is rendered
    view.render_now()
    assert "label" in order and order.index("label") < order.index("render")


def test_while_held_a_slow_views_first_frame_waits_for_the_retrievals(qtbot, cortex):
    view = slow_view(qtbot, cortex)
    wait_for_coarse_copies(qtbot, view)
    qtbot.wait(50)
    before = view.renderer.frames
    view.hold_full_detail(True)  # a live decode started
    view.set_overlay(np.linspace(-1, 1, cortex.n_vertices))
    qtbot.wait(100)
    assert view.renderer.frames == before  # the retrievals may still come and paint first
    qtbot.waitUntil(lambda: view.renderer.frames == before + 1, timeout=1000)
    view.set_overlay(np.linspace(1, -1, cortex.n_vertices))  # later changes in the same hold render at once
    qtbot.wait(30)
    assert view.renderer.frames == before + 2 and view.renderer.coarse
    view.hold_full_detail(False)
    qtbot.waitUntil(lambda: not view.renderer.coarse, timeout=3000)
