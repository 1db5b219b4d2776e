"""The cortex view under pytest-qt: rendering, picking, hover, and brush strokes driven by synthetic mouse events."""

import numpy as np
import pytest
import shiboken6
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QWidget

from brainview.cortex import Cortex, RoiSelection
from brainview.qt.cortex_view import BACKGROUND, QtCortexView, grab_with_cortex
from brainview.qt.vtk_offscreen import OffscreenEGLRenderWindow, qt_is_offscreen
from tests.factories import make_bundle

LEFT, RIGHT, NONE = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton, Qt.MouseButton.NoButton


@pytest.fixture(scope="module")
def cortex(tmp_path_factory):
    return Cortex.from_bundle(make_bundle(tmp_path_factory.mktemp("b") / "bundle", subdivisions=3, n_voxels=60))


def shown_view(qtbot, cortex, surface: str | None = None) -> QtCortexView:
    """A cortex view on screen with a selection model, rendered once (on ``surface`` if given)."""
    view = QtCortexView()
    qtbot.addWidget(view)
    view.resize(640, 360)
    view.show()
    qtbot.waitExposed(view)
    view.set_cortex(cortex)
    view.set_selection_model(RoiSelection(cortex))
    if surface is not None:
        view.set_surface(surface)
    view.render_now()
    return view


@pytest.fixture
def view(qtbot, cortex):
    return shown_view(qtbot, cortex)


def lh_center(view):
    """Widget position (in the VTK area) of the middle of the left hemisphere's half."""
    area = view._vtk
    return QPoint(area.width() // 4, area.height() // 2)


def send(view, kind, position, button=NONE, buttons=NONE, modifiers=Qt.KeyboardModifier.NoModifier):
    area = view._vtk
    event = QMouseEvent(kind, QPointF(position), QPointF(area.mapToGlobal(position)), button, buttons, modifiers)
    QApplication.sendEvent(area, event)


def drag(view, start, stop, button, modifiers=Qt.KeyboardModifier.NoModifier, steps=6):
    send(view, QEvent.Type.MouseButtonPress, start, button, button, modifiers)
    for k in range(1, steps + 1):
        send(view, QEvent.Type.MouseMove, start + (stop - start) * (k / steps), NONE, button, modifiers)
    send(view, QEvent.Type.MouseButtonRelease, stop, button, NONE, modifiers)


def camera_positions(view):
    return [s.renderer.GetActiveCamera().GetPosition() for s in view._scenes.values()]


def test_offscreen_platform_uses_the_egl_window(view):
    assert qt_is_offscreen() == isinstance(view._rw, OffscreenEGLRenderWindow)


def test_overlay_renders_colours_and_a_colour_bar(view, cortex):
    empty = view.render_to_image()
    xyz = np.concatenate([cortex.hemis[h].inflated for h in ("lh", "rh")])
    view.set_overlay(xyz[:, 2] / 50.0, cmap="RdBu_r", threshold=0.1)
    image = view.render_to_image()
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert image.shape[:2] == (view._vtk.height(), view._vtk.width())
    background = np.round(np.array(BACKGROUND) * 255)
    assert (np.abs(image.astype(int) - background).sum(axis=2) > 30).mean() > 0.1  # the spheres are drawn
    red = (image[..., 0] > 150) & (image[..., 2] < 100)
    blue = (image[..., 2] > 150) & (image[..., 0] < 100)
    assert red.sum() > 200 and blue.sum() > 200
    assert not (empty == image).all()
    assert view._scalar_bar.GetVisibility()
    lh = view._scenes["lh"]
    below = np.abs(xyz[: lh.mesh.n_vertices, 2] / 50.0) < 0.1
    np.testing.assert_array_equal(lh.colors[below], lh.underlay[below])  # under the threshold: sulcal grey
    view.update_overlay_style(symmetric=False, vmax=0.5)
    assert view.controls.symmetric.isChecked() is False and view.controls.vmax.value() == 0.5
    view.controls.cmap.setCurrentText("viridis")
    view.set_overlay(xyz[:, 1] / 50.0)  # a new pattern keeps the style the user chose
    assert view.overlay_style == {"cmap": "viridis", "threshold": 0.1, "vmin": None, "vmax": 0.5, "symmetric": False,
                                  "visible": True, "opacity": 1.0}
    view.set_overlay(None)
    assert not view._scalar_bar.GetVisibility()
    np.testing.assert_array_equal(lh.colors, lh.underlay)
    with pytest.raises(ValueError, match="one value per vertex"):
        view.set_overlay(np.zeros(3))


def test_voxel_overlay_goes_through_the_vertex_voxel_map(view, cortex):
    view.set_voxel_overlay(np.linspace(-1, 1, cortex.n_voxels))
    np.testing.assert_allclose(view._overlay, cortex.voxels_to_vertices(np.linspace(-1, 1, cortex.n_voxels)))


def test_a_click_without_drag_picks_the_vertex_under_the_mouse(view, qtbot, cortex):
    with qtbot.waitSignal(view.vertex_picked, timeout=2000) as picked:
        drag(view, lh_center(view), lh_center(view), LEFT, steps=1)
    hemi, vertex = picked.args
    assert hemi == "lh"
    xyz = cortex.hemis["lh"].inflated
    assert xyz[vertex, 0] - xyz[:, 0].min() < 3.0  # the lateral view of lh looks at its smallest x
    # a marker sits on the picked vertex, and follows it to another surface
    assert view.picked == ("lh", vertex) and view._marker_renderer is view.scenes["lh"].renderer
    np.testing.assert_allclose(view._marker_source.GetCenter(), xyz[vertex], atol=1e-4)
    view.set_surface("pial")
    np.testing.assert_allclose(view._marker_source.GetCenter(), cortex.hemis["lh"].pial[vertex], atol=1e-4)
    assert view._vtk.GetInteractorStyle().GetMouseWheelMotionFactor() < 1.0  # a gentler wheel zoom than VTK's


def test_a_drag_without_the_brush_turns_the_camera_and_picks_nothing(view, qtbot):
    before = camera_positions(view)
    picks = []
    view.vertex_picked.connect(lambda *args: picks.append(args))
    drag(view, lh_center(view), lh_center(view) + QPoint(60, 10), LEFT)
    assert camera_positions(view) != before
    assert picks == [] and view.selection.is_empty()


def test_hover_reports_vertex_voxel_and_value(view, qtbot, cortex):
    view.set_overlay(np.arange(cortex.n_vertices, dtype=np.float32))
    with qtbot.waitSignal(view.hovered, timeout=2000) as hovered:
        send(view, QEvent.Type.MouseMove, lh_center(view))
    text = hovered.args[0]
    assert text.startswith("lh vertex ") and " voxel " in text and " value " in text
    vertex = int(text.split()[2])
    assert f"voxel {cortex.main_voxel[vertex]}" in text and f"value {vertex}" in text
    assert view.status.text() == text
    send(view, QEvent.Type.MouseMove, QPoint(view._vtk.width() // 2, 5))  # the gap between the hemispheres
    assert view.hover_info == ""


def test_a_brush_stroke_paints_without_moving_the_camera_and_undo_restores_it(view, qtbot, cortex):
    selection = view.selection
    view.set_brush_radius(12.0)
    view.controls.brush.click()
    assert view.brush_enabled
    before = camera_positions(view)
    built = view._scenes["lh"].locator.GetBuildTime()
    with qtbot.waitSignal(view.selection_changed, timeout=2000):
        drag(view, lh_center(view) - QPoint(20, 0), lh_center(view) + QPoint(20, 0), LEFT)
    assert camera_positions(view) == before
    assert not selection.is_empty() and not selection.in_stroke
    painted = selection.painted_vertices()
    assert painted.max() < cortex.hemis["lh"].n_vertices
    lh = view._scenes["lh"]
    assert lh.fill[painted].all() and (lh.colors[painted] != lh.base[painted]).any(axis=1).all()
    assert lh.locator.GetBuildTime() == built  # recolouring never rebuilt the picking index
    # erase part of it with the right button; the eraser's stroke is its own undo step
    drag(view, lh_center(view), lh_center(view), RIGHT, steps=1)
    assert 0 < selection.painted_vertices().size < painted.size
    selection.undo()
    np.testing.assert_array_equal(selection.painted_vertices(), painted)
    selection.undo()
    assert selection.is_empty() and not lh.fill.any()
    np.testing.assert_array_equal(lh.colors, lh.base)
    selection.redo()
    np.testing.assert_array_equal(selection.painted_vertices(), painted)


def test_shift_drag_erases_atlas_voxels(view, cortex):
    selection = view.selection
    selection.set_atlas_rois(list(cortex.rois))
    full = selection.voxels().size
    view.set_brush_enabled(True)
    drag(view, lh_center(view), lh_center(view), LEFT, modifiers=Qt.KeyboardModifier.ShiftModifier, steps=1)
    assert selection.voxels().size < full
    assert selection.erased_vertices().size > 0 and selection.painted_vertices().size == 0


def test_roi_outlines_colour_the_boundary(view, cortex):
    view.set_roi_outlines({"V1": cortex.rois["V1"]}, colors={"V1": (255, 0, 255)})
    assert view.roi_outline_colors == {"V1": (255, 0, 255)}
    outline = cortex.roi_outline(cortex.rois["V1"])
    colors = np.concatenate([view._scenes[h].colors for h in ("lh", "rh")])
    assert outline.any()
    assert (colors[outline] == (255, 0, 255)).all()
    assert not (colors[~outline] == (255, 0, 255)).all(axis=1).any()
    view.set_roi_outlines({})
    assert not (np.concatenate([view._scenes[h].colors for h in ("lh", "rh")]) == (255, 0, 255)).all(axis=1).any()


def test_surface_and_view_presets(view, cortex):
    for preset in ("lateral", "medial", "ventral", "posterior"):
        view.set_view(preset)
        assert view.controls.view_preset.currentText() == preset
        assert view.render_to_image().mean() > 0
    view.controls.surface.setCurrentText("pial")
    assert view.surface == "pial"
    points = np.asarray(view._scenes["rh"].polydata.GetPoints().GetData())
    np.testing.assert_allclose(points, cortex.hemis["rh"].pial)
    view.set_view("lateral")
    hemi, vertex = view.pick(lh_center(view))  # the picking index follows the surface
    pial = cortex.hemis["lh"].pial
    assert hemi == "lh" and pial[vertex, 0] - pial[:, 0].min() < 3.0
    with pytest.raises(ValueError):
        view.set_view("anterior")


def test_grab_with_cortex_paints_the_vtk_area_in(view):
    image = grab_with_cortex(view)
    area = view._vtk.geometry()
    center = image.pixelColor(area.x() + area.width() // 4, area.y() + area.height() // 2)
    assert (center.red(), center.green(), center.blue()) != (0, 0, 0)


def test_closing_releases_the_selection_and_the_render_window(qtbot, cortex):
    view = QtCortexView()
    qtbot.addWidget(view)
    view.show()
    view.set_cortex(cortex)
    selection = RoiSelection(cortex)
    view.set_selection_model(selection)
    view.close()
    assert view._closed and view._on_selection_changed not in selection._listeners
    selection.paint([0])  # no listener left to touch the closed view
    with pytest.raises(RuntimeError, match="closed"):
        view.render_to_image()
    other = QtCortexView()
    qtbot.addWidget(other)
    with pytest.raises(ValueError, match="another cortex"):
        other.set_selection_model(selection)


def test_a_view_deleted_with_its_window_stops_listening(qtbot, cortex):
    window = QWidget()
    view = QtCortexView(window)
    view.set_cortex(cortex)
    selection = RoiSelection(cortex)
    view.set_selection_model(selection)
    window.deleteLater()
    qtbot.waitUntil(lambda: not shiboken6.isValid(view))
    selection.paint([0])  # the dead view's listener removes itself instead of raising
    assert view._on_selection_changed not in selection._listeners


def test_a_stroke_where_no_voxel_lies_is_drawn_apart_and_the_region_has_an_edge(qtbot):
    """Painting over vertices that map to no voxel (the medial wall) shows the stroke in its own colour
    (it adds nothing to the pattern); the voxels' region shows an opaque edge around its blended inside."""
    import scipy.sparse as sp

    from brainview.cortex.surface import FILL_EDGE, FILL_INSIDE, FILL_NO_VOXEL
    from brainview.qt.cortex_scene import NO_VOXEL_RGB, SELECTION_RGB
    from tests.factories import sphere_mesh

    mesh = sphere_mesh(3)
    n_lh, n = mesh["lh"]["inflated"].shape[0], sum(m["inflated"].shape[0] for m in mesh.values())
    rows = np.arange(n_lh, n)  # the left hemisphere maps to no voxel (as a medial wall does)
    cortex = Cortex(mesh, sp.csr_matrix((np.ones(rows.size), (rows, rows % 50)), shape=(n, 50)))
    view = shown_view(qtbot, cortex)
    view.set_brush_radius(12.0)
    view.controls.brush.click()
    with qtbot.waitSignal(view.selection_changed, timeout=2000):
        drag(view, lh_center(view) - QPoint(20, 0), lh_center(view) + QPoint(20, 0), LEFT)
    painted = view.selection.painted_vertices()
    assert painted.size and view.selection.is_empty()  # painted, yet no voxel selected
    lh = view._scenes["lh"]
    assert (lh.fill[painted] == FILL_NO_VOXEL).all()
    expected = (lh.base[painted] * (1 - lh.fill_alpha) + NO_VOXEL_RGB * lh.fill_alpha).astype(np.uint8)
    assert np.abs(lh.colors[painted].astype(int) - expected).max() <= 1
    # add a region of voxels (in the right hemisphere): blended inside, opaque edge; the stroke stays
    view.selection.replace(np.arange(10), painted_vertices=painted)
    rh = view._scenes["rh"]
    edge, inside = rh.fill == FILL_EDGE, rh.fill == FILL_INSIDE
    assert edge.any() and inside.any() and (lh.fill[painted] == FILL_NO_VOXEL).all()
    np.testing.assert_array_equal(rh.colors[edge], np.broadcast_to(SELECTION_RGB.astype(np.uint8), (edge.sum(), 3)))
    blended = (rh.base[inside] * (1 - rh.fill_alpha) + SELECTION_RGB * rh.fill_alpha).astype(np.uint8)
    assert np.abs(rh.colors[inside].astype(int) - blended).max() <= 1
