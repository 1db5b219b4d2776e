"""The cortex view: both hemispheres in VTK, an overlay, ROI outlines, picking and an ROI brush.

Each hemisphere is a :class:`~brainview.qt.cortex_scene.HemiScene` (mesh, colour layers, cell
locator, level-of-detail copy); :class:`~brainview.qt.cortex_render.QtRenderScheduler` decides when
and at which detail the window renders; :class:`~brainview.qt.cortex_controls.QtCortexControls` is
the toolbar.

Mouse: without the brush, left-drag rotates (VTK trackball), a click without drag picks a vertex
(``vertex_picked``), hovering reports vertex, voxel and value (``hovered``). With the brush on,
left-drag paints and right-drag (or Shift+left) erases, along the surface within the brush radius;
those events never reach VTK, so the camera stays put while painting. Each drag is one stroke
of the :class:`~brainview.cortex.RoiSelection`, so undo removes it whole. Picks always hit the
full-resolution mesh, whatever is drawn.
"""

from __future__ import annotations

import numpy as np
import shiboken6
from PySide6.QtCore import QEvent, QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget
from vtkmodules.util.numpy_support import vtk_to_numpy
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera
from vtkmodules.vtkFiltersSources import vtkSphereSource
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper, vtkRenderer, vtkWindowToImageFilter

import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL implementations)
from brainview.cortex import HEMISPHERES, SURFACES, Cortex, RoiSelection
from brainview.qt.cortex_controls import FLAT_VIEW, VIEWS, QtCortexControls
from brainview.qt.cortex_overlay import bar_title, color_range, lookup_table, make_scalar_bar, visible
from brainview.qt.cortex_render import QtRenderScheduler
from brainview.qt.cortex_scene import BACKGROUND, OUTLINE_PALETTE, HemiScene, view_ray
from brainview.qt.vtk_offscreen import QtVTKInteractor, make_render_window
from brainview.state.session_file import BRUSH_RADIUS, CAMERA, OVERLAY_STYLE

WHEEL_ZOOM_FACTOR = 0.25  # VTK's default (1.0) zooms by a fifth of the view per wheel step
MARKER_MM = 1.5  # radius of the marker at the picked vertex
BAR_STRIP = 0.14  # share of the height kept for the colour bar, its labels and its title
CLICK_SLOP_PX = 3
DAB_SPACING_PX = 8


class QtCortexView(QWidget):
    """Both hemispheres of a :class:`Cortex` with overlay, ROI outlines, selection fill, picking and brush."""

    hovered = Signal(str)
    vertex_picked = Signal(str, int)
    selection_changed = Signal()
    style_changed = Signal()  # the overlay's style changed (its controls, or a call)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.cortex: Cortex | None = None
        self.selection: RoiSelection | None = None
        self.surface = "inflated"
        self.view = "lateral"
        self.brush_enabled = False
        self.brush_radius = 5.0
        self.brush_erase = False  # left drag erases (right drag and Shift+left always do)
        self.hover_info = ""
        self.overlay_style = {"cmap": "RdBu_r", "threshold": None, "vmin": None, "vmax": None, "symmetric": True,
                              "visible": True, "opacity": 1.0}
        self.overlay_label = ""  # the colour bar's title: which overlay it shows
        self._overlay: np.ndarray | None = None
        self._coloured = None  # (style and range, overlay values) of the colours on screen
        self._bar_bottom = None  # height of the colour-bar strip the viewports were laid out for
        self._outline_colors: dict[str, tuple[int, int, int]] = {}
        self._scenes: dict[str, HemiScene] = {}
        self._scene_layers: dict = {}  # selection opacity and outline visibility chosen in the overlay list
        self._press: tuple[QPoint, Qt.MouseButton] | None = None
        self._dragged = False
        self._stroke_erase: bool | None = None
        self._last_dab: QPoint | None = None
        self._closed = False
        self._initialized = False

        self._rw = make_render_window()
        self._vtk = QtVTKInteractor(self, rw=self._rw)
        style = vtkInteractorStyleTrackballCamera()
        style.SetMouseWheelMotionFactor(WHEEL_ZOOM_FACTOR)
        self._vtk.SetInteractorStyle(style)
        self._vtk.RemoveObservers("CharEvent")  # VTK's key bindings ('e' exits, '3' stereo, ...) have no place here
        self._vtk.installEventFilter(self)
        self._bar_renderer = vtkRenderer()
        self._bar_renderer.SetBackground(*BACKGROUND)
        self._bar_renderer.InteractiveOff()
        self._rw.AddRenderer(self._bar_renderer)
        self._scalar_bar = make_scalar_bar()
        self._bar_renderer.AddViewProp(self._scalar_bar)
        self._preset_cameras: list[tuple] = []
        self.picked: tuple[str, int] | None = None
        self._marker_source = vtkSphereSource(radius=MARKER_MM, theta_resolution=16, phi_resolution=16)
        mapper = vtkPolyDataMapper()
        mapper.SetInputConnection(self._marker_source.GetOutputPort())
        self._marker = vtkActor(mapper=mapper)
        self._marker.GetProperty().SetColor(1.0, 0.85, 0.1)
        self._marker.PickableOff()
        self._marker_renderer: vtkRenderer | None = None
        self.renderer = QtRenderScheduler(self._rw, lambda: self._scenes, self)
        self._vtk.paint_requested = self.renderer.repaint  # exposes and resizes render with the rest, once
        style.AddObserver("StartInteractionEvent", lambda *_: self.renderer.begin_motion())
        style.AddObserver("EndInteractionEvent", lambda *_: self.renderer.end_motion())

        self._refit_timer = QTimer(self, singleShot=True, interval=0)
        self._refit_timer.timeout.connect(self._refit)
        self.controls = QtCortexControls(self)
        self.status = QLabel(" ", self)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.controls)
        layout.addWidget(self._vtk, 1)
        layout.addWidget(self.status)
        self.hovered.connect(self.status.setText)
        self.controls.sync()

    # -- model -----------------------------------------------------------------------------------
    def set_cortex(self, cortex: Cortex | None) -> None:
        """Show ``cortex`` (or nothing); drops the overlay, the outlines and the selection model."""
        self.set_selection_model(None)
        for scene in self._scenes.values():
            self._rw.RemoveRenderer(scene.renderer)
        self._scenes.clear()
        self.picked = None  # (hemisphere, vertex) marked on the surface
        self._place_marker()
        self._overlay = None
        self._coloured = None
        self._bar_bottom = None
        self._outline_colors = {}
        self._scalar_bar.SetVisibility(False)
        self.cortex = cortex
        if cortex is not None:
            if self.surface not in cortex.surfaces:
                self.surface = "inflated"
            self.controls.set_surfaces(cortex.surfaces)
            for hemi in HEMISPHERES:
                scene = HemiScene(cortex, hemi, self.surface)
                for key, value in self._scene_layers.items():
                    setattr(scene, key, value)
                self._rw.AddRenderer(scene.renderer)
                self._scenes[hemi] = scene
            self._layout_viewports()
            self._apply_view()
        self._request_render()

    def set_selection_model(self, selection: RoiSelection | None) -> None:
        """Show and edit ``selection`` (which must belong to the current cortex)."""
        if selection is not None and selection.cortex is not self.cortex:
            raise ValueError("the selection belongs to another cortex; call set_cortex first")
        if self.selection is not None:
            self.selection.disconnect(self._on_selection_changed)
        self.selection = selection
        if selection is not None:
            selection.on_change(self._on_selection_changed)
        self._on_selection_changed(selection)

    def _on_selection_changed(self, selection: RoiSelection | None) -> None:
        if self._closed or not shiboken6.isValid(self):  # closed, or deleted with its window: stop listening
            if selection is not None:
                selection.disconnect(self._on_selection_changed)
            return
        fill = (self.cortex.selection_fill(selection.voxels(), selection.painted_vertices())
                if selection is not None and self.cortex is not None else None)
        for hemi, scene in self._scenes.items():
            new = fill[self.cortex.hemi_slice(hemi)] if fill is not None else np.zeros_like(scene.fill)
            changed = np.flatnonzero(new != scene.fill)
            if changed.size:
                scene.fill[changed] = new[changed]
                scene.compose(changed)
        self.controls.sync()
        self._request_render()
        self.selection_changed.emit()

    # -- overlay and outlines --------------------------------------------------------------------
    def set_overlay(self, values, cmap: str | None = None, threshold: float | None = None,
                    vmin: float | None = None, vmax: float | None = None, symmetric: bool | None = None) -> None:
        """Colour the surface with per-vertex ``values`` (n_vertices, lh then rh); None removes the overlay.

        Style arguments left at None keep the current setting (initially RdBu_r, no threshold,
        automatic symmetric range), so a new pattern keeps what the user chose in the controls;
        :meth:`update_overlay_style` with ``vmax=None`` goes back to the automatic range. With
        ``symmetric`` the range is ±``vmax`` (automatic: the largest magnitude) and values whose
        magnitude is below ``threshold`` stay transparent; otherwise ``vmin``..``vmax`` (automatic:
        the data range) and values below ``threshold`` stay transparent.
        """
        if values is not None:
            values = np.asarray(values, dtype=np.float32).ravel()
            if self.cortex is None or values.shape != (self.cortex.n_vertices,):
                expected = self.cortex.n_vertices if self.cortex is not None else "?"
                raise ValueError(f"expected one value per vertex ({expected}), got {values.shape[0]}")
        self._overlay = values
        style = dict(cmap=cmap, threshold=threshold, vmin=vmin, vmax=vmax, symmetric=symmetric)
        self.update_overlay_style(**{key: value for key, value in style.items() if value is not None})

    def set_voxel_overlay(self, values, **style) -> None:
        """Like :meth:`set_overlay` for per-voxel values (a brain pattern), mapped through the bundle's map."""
        self.set_overlay(None if values is None else self.cortex.voxels_to_vertices(values), **style)

    def update_overlay_style(self, **style) -> None:
        """Change some of cmap, threshold, vmin, vmax, symmetric, visible, opacity and recolour the current
        overlay."""
        unknown = set(style) - set(self.overlay_style)
        if unknown:
            raise TypeError(f"unknown overlay style {sorted(unknown)}")
        for key, value in style.items():  # every value checked before any is stored
            OVERLAY_STYLE[key].check(value, f"overlay {key}")
        self.overlay_style.update(style)
        drawn = self._overlay if self.overlay_style["visible"] else None
        vmin, vmax, table = color_range(self._overlay, self.overlay_style)
        coloured = (dict(self.overlay_style), vmin, vmax)
        previous = self._coloured
        self._coloured = (coloured, None if drawn is None else drawn.copy())
        opacity = float(self.overlay_style["opacity"])
        for hemi, scene in self._scenes.items():
            part = self.cortex.hemi_slice(hemi)
            values = drawn[part] if drawn is not None else None
            # same style and range as the colours on screen: recolour only the vertices whose value
            # changed (a synthetic pattern's ROI, not 2 × 227k vertices)
            vertices = slice(None)
            if previous is not None and previous[0] == coloured and values is not None and previous[1] is not None:
                old = previous[1][part]
                vertices = np.flatnonzero(~((old == values) | (np.isnan(old) & np.isnan(values))))
                if vertices.size == 0:
                    continue
            scene.base[vertices] = scene.underlay[vertices]
            if values is not None:
                values = values[vertices]
                shown = visible(values, self.overlay_style)
                index = np.clip((values[shown] - vmin) / (vmax - vmin) * 255, 0, 255).astype(np.int64)
                target = np.arange(scene.base.shape[0])[vertices][shown]
                scene.base[target] = (table[index, :3] * opacity
                                      + scene.underlay[target] * (1.0 - opacity)).round().astype(np.uint8)
            scene.compose(vertices)
        if drawn is not None:
            self._scalar_bar.SetLookupTable(lookup_table(table, vmin, vmax, self.overlay_style))
            self._scalar_bar.SetTitle(bar_title(self.overlay_label, self.overlay_style))
        self._scalar_bar.SetVisibility(drawn is not None)
        self._layout_viewports()
        self.controls.sync()
        self._request_render()
        self.style_changed.emit()

    def set_overlay_label(self, label: str) -> None:
        """Name the overlay on the colour bar ("trial fMRI pattern · |value| ≥ 0.5")."""
        self.overlay_label = label
        self._scalar_bar.SetTitle(bar_title(label, self.overlay_style))
        self._request_render()

    def set_selection_look(self, visible: bool, opacity: float) -> None:
        """Show the selection fill at ``opacity`` (0..1), or not at all."""
        self._set_scene_layers(fill_alpha=float(opacity) if visible else 0.0)

    def set_outlines_visible(self, visible: bool) -> None:
        self._set_scene_layers(show_outlines=bool(visible))

    def _set_scene_layers(self, **layers) -> None:
        for scene in self._scenes.values():
            if any(getattr(scene, key) != value for key, value in layers.items()):
                for key, value in layers.items():
                    setattr(scene, key, value)
                scene.compose()
        self._scene_layers = {**self._scene_layers, **layers}  # kept for the scenes of the next cortex
        self._request_render()

    def set_roi_outlines(self, rois: dict[str, np.ndarray], colors: dict[str, tuple[int, int, int]] | None = None):
        """Draw the boundary of each ROI (name -> voxel ids) on the surface, each in its own colour."""
        self._outline_colors = {}
        labels = np.full(self.cortex.n_vertices, -1, dtype=np.int16) if self.cortex is not None else None
        palette = [tuple(int(c) for c in rgb) for rgb in OUTLINE_PALETTE]
        for i, (name, voxels) in enumerate(rois.items()):
            rgb = tuple((colors or {}).get(name, palette[i % len(palette)]))
            self._outline_colors[name] = rgb
            if labels is not None:
                labels[self.cortex.roi_outline(voxels)] = i
        outline_colors = np.array(list(self._outline_colors.values()) or palette, dtype=np.uint8)
        for hemi, scene in self._scenes.items():
            scene.outline[:] = labels[self.cortex.hemi_slice(hemi)]
            scene.outline_colors = outline_colors
            scene.compose()
        self._request_render()

    @property
    def roi_outline_colors(self) -> dict[str, tuple[int, int, int]]:
        """The RGB colour of each outlined ROI, for a legend."""
        return dict(self._outline_colors)

    # -- camera, surface, brush ------------------------------------------------------------------
    def set_surface(self, surface: str) -> None:
        """Show the inflated, pial or (when the bundle has one) flattened cortex."""
        available = self.cortex.surfaces if self.cortex is not None else SURFACES
        if surface not in available:
            raise ValueError(f"surface must be one of {available}, got {surface!r}")
        self.surface = surface
        for scene in self._scenes.values():
            scene.set_surface(surface)
            if self.brush_enabled:
                scene.mesh.prepare_brush(surface)
        self._apply_view()
        self._place_marker()
        self.controls.sync()
        self._request_render()

    def set_view(self, view: str) -> None:
        """Camera preset: lateral, medial, ventral or posterior (each hemisphere in its half)."""
        if view not in VIEWS:
            raise ValueError(f"view must be one of {list(VIEWS)}, got {view!r}")
        self.view = view
        self._apply_view()
        self.controls.sync()
        self._request_render()

    def _apply_view(self) -> None:
        """Point each hemisphere's camera along the preset and fit the mesh snugly in its viewport."""
        width, height = self._rw.GetSize()
        for hemi, scene in self._scenes.items():
            x0, y0, x1, y1 = scene.renderer.GetViewport()
            self.fit_camera(scene, hemi, max(width * (x1 - x0), 1) / max(height * (y1 - y0), 1), scene.renderer)
        self._preset_cameras = self._camera_states()

    def fit_camera(self, scene: "HemiScene", hemi: str, aspect: float, renderer: vtkRenderer) -> None:
        """Point ``renderer``'s camera along the current preset and fit the drawn mesh snugly at ``aspect``."""
        scene.fit_camera(renderer, FLAT_VIEW if self.surface == "flat" else VIEWS[self.view][hemi], aspect)

    @property
    def camera_moved(self) -> bool:
        """Whether the user turned or zoomed a camera away from the preset."""
        return self._camera_states() != self._preset_cameras

    @property
    def scenes(self) -> dict[str, "HemiScene"]:
        return dict(self._scenes)

    def color_range(self) -> tuple[float, float] | None:
        """The overlay's colour range (vmin, vmax) as drawn now, or None without an overlay."""
        return None if self._overlay is None else color_range(self._overlay, self.overlay_style)[:2]

    def camera_state(self) -> list[dict] | None:
        """Each hemisphere's camera (position, focal point, view up) when the user moved it, else None."""
        if not self.camera_moved:
            return None
        cameras = [scene.renderer.GetActiveCamera() for scene in self._scenes.values()]
        return [{"position": list(c.GetPosition()), "focal_point": list(c.GetFocalPoint()),
                 "view_up": list(c.GetViewUp())} for c in cameras]

    def set_camera_state(self, state: list[dict] | None) -> None:
        """Put back cameras saved by :meth:`camera_state` (None: the preset); a malformed or non-finite
        camera raises ``SchemaError`` before any camera moves."""
        CAMERA.check(state, "camera")
        if state is None or len(state) != len(self._scenes):
            self._apply_view()
        else:
            for scene, saved in zip(self._scenes.values(), state):
                camera = scene.renderer.GetActiveCamera()
                camera.SetPosition(*saved["position"])
                camera.SetFocalPoint(*saved["focal_point"])
                camera.SetViewUp(*saved["view_up"])
                scene.renderer.ResetCameraClippingRange()
        self._request_render()

    def _camera_states(self) -> list[tuple]:
        return [scene.renderer.GetActiveCamera().GetPosition() + scene.renderer.GetActiveCamera().GetFocalPoint()
                for scene in self._scenes.values()]

    def _layout_viewports(self) -> None:
        """Hemispheres side by side; a strip at the bottom for the colour bar when there is an overlay."""
        bottom = BAR_STRIP if self._overlay is not None else 0.0
        if self._scenes and bottom == self._bar_bottom:
            return  # the same layout: refitting the cameras would cost a pass over every vertex
        self._bar_bottom = bottom
        untouched = self._camera_states() == self._preset_cameras
        for i, scene in enumerate(self._scenes.values()):
            scene.renderer.SetViewport(0.5 * i, bottom, 0.5 * (i + 1), 1.0)
        self._bar_renderer.SetViewport(0.0, 0.0, 1.0, max(bottom, 1e-3))
        self._bar_renderer.SetDraw(bottom > 0)
        if untouched and self._scenes:
            self._apply_view()

    def set_brush_enabled(self, enabled: bool) -> None:
        self.brush_enabled = bool(enabled)
        if enabled and self.cortex is not None:
            for hemi in self.cortex.hemis.values():
                hemi.prepare_brush(self.surface)
        self._vtk.setCursor(Qt.CursorShape.CrossCursor if enabled else Qt.CursorShape.ArrowCursor)
        self.controls.sync()

    def set_brush_radius(self, radius_mm: float) -> None:
        BRUSH_RADIUS.check(radius_mm, "brush radius (mm)")
        self.brush_radius = float(radius_mm)
        self.controls.sync()

    def set_brush_erase(self, erase: bool) -> None:
        self.brush_erase = bool(erase)
        self.controls.sync()

    # -- picking ---------------------------------------------------------------------------------
    def display_position(self, position: QPoint) -> tuple[int, int]:
        """Render-window pixel (origin bottom left) of a widget position of the VTK area.

        The scale is the window's own device pixel ratio (see :class:`QtVTKInteractor`), the one the
        render window is sized with."""
        scale = self._vtk._getPixelRatio()
        return int(round(position.x() * scale)), int(round((self._vtk.height() - position.y() - 1) * scale))

    def pick(self, position: QPoint) -> tuple[str, int] | None:
        """(hemisphere, local vertex) under a widget position of the VTK area, or None."""
        if not self._scenes:
            return None
        x, y = self.display_position(position)
        renderer = self._vtk.FindPokedRenderer(x, y)
        for hemi, scene in self._scenes.items():
            if scene.renderer is renderer:
                vertex = scene.pick(*view_ray(renderer, x, y))
                return None if vertex is None else (hemi, vertex)
        return None

    def mark_vertex(self, hemi: str, vertex: int) -> None:
        """Put the marker on a (picked) vertex, so the status bar's readout points at a place."""
        self.picked = (hemi, int(vertex))
        self._place_marker()
        self._request_render()

    def _place_marker(self) -> None:
        if self._marker_renderer is not None:
            self._marker_renderer.RemoveActor(self._marker)
            self._marker_renderer = None
        if self.picked is None or self.picked[0] not in self._scenes:
            return
        hemi, vertex = self.picked
        self._marker_source.SetCenter(*self.cortex.hemis[hemi].coords(self.surface)[vertex].astype(float))
        self._marker_renderer = self._scenes[hemi].renderer
        self._marker_renderer.AddActor(self._marker)

    def describe_vertex(self, hemi: str, vertex: int) -> str:
        """Hover text: vertex, its main voxel, the overlay value and the atlas ROIs holding the voxel."""
        index = self.cortex.hemis[hemi].offset + vertex
        voxel = int(self.cortex.main_voxel[index])
        parts = [f"{hemi} vertex {vertex}", f"voxel {voxel}" if voxel >= 0 else "no voxel"]
        if self._overlay is not None and np.isfinite(self._overlay[index]):
            parts.append(f"value {self._overlay[index]:.4g}")
        names = [name for name, voxels in self.cortex.rois.items() if voxel >= 0 and _contains(voxels, voxel)]
        if names:
            parts.append(", ".join(names))
        if self.selection is not None and voxel >= 0 and self.selection.voxel_mask()[voxel]:
            parts.append("selected")
        return " · ".join(parts)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        if watched is not self._vtk or self.cortex is None:
            return False
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress:
            return self._mouse_press(event)
        if kind == QEvent.Type.MouseMove:
            return self._mouse_move(event)
        if kind == QEvent.Type.MouseButtonRelease:
            return self._mouse_release(event)
        if kind == QEvent.Type.Leave:
            self._set_hover("")
        if kind == QEvent.Type.Resize and self._camera_states() == self._preset_cameras:
            self._refit_timer.start()  # after the render window has taken the new size
        return False

    def _refit(self) -> None:
        if not self._closed and self._scenes:
            self._apply_view()
            self._request_render()

    def _mouse_press(self, event) -> bool:
        position, button = event.position().toPoint(), event.button()
        self._press, self._dragged = (position, button), False
        if self.brush_enabled and self.selection is not None and button in (Qt.MouseButton.LeftButton,
                                                                             Qt.MouseButton.RightButton):
            self._stroke_erase = (self.brush_erase or button == Qt.MouseButton.RightButton
                                  or bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
            self.selection.begin_stroke()
            self.renderer.begin_motion()
            self._dab(position)
            return True  # VTK never sees it: the camera stays fixed while painting
        return False

    def _mouse_move(self, event) -> bool:
        position = event.position().toPoint()
        if self._stroke_erase is not None:
            self._dab_along(position)
            return True
        if self._press is not None:
            if (position - self._press[0]).manhattanLength() > CLICK_SLOP_PX:
                self._dragged = True
            return False
        hit = self.pick(position)
        self._set_hover(self.describe_vertex(*hit) if hit else "")
        return False

    def _mouse_release(self, event) -> bool:
        press, self._press = self._press, None
        if self._stroke_erase is not None:
            self._stroke_erase, self._last_dab = None, None
            self.selection.end_stroke()
            self.renderer.end_motion()
            return True
        if press is not None and not self._dragged and press[1] == Qt.MouseButton.LeftButton:
            hit = self.pick(event.position().toPoint())
            if hit is not None:
                self.mark_vertex(*hit)
                self.vertex_picked.emit(*hit)
        return False

    def _dab_along(self, position: QPoint) -> None:
        """Dab at ``position`` and at even steps from the previous dab, so a fast drag leaves no gaps."""
        last = self._last_dab or position
        steps = max(1, min(16, int(np.ceil((position - last).manhattanLength() / DAB_SPACING_PX))))
        for k in range(1, steps + 1):
            self._dab(last + (position - last) * (k / steps))

    def _dab(self, position: QPoint) -> None:
        self._last_dab = QPoint(position)
        hit = self.pick(position)
        if hit is not None:
            self.selection.paint(self.cortex.brush_vertices(*hit, self.brush_radius, self.surface),
                                 erase=bool(self._stroke_erase))

    def _set_hover(self, text: str) -> None:
        if text != self.hover_info:
            self.hover_info = text
            self.hovered.emit(text)

    # -- rendering -------------------------------------------------------------------------------
    def _request_render(self) -> None:
        """Render once control returns to the event loop, however many changes came before."""
        if not self._closed:
            self.renderer.request()

    def render_now(self) -> None:
        """Render at full detail at once (changes otherwise render when control returns to the event loop)."""
        if not self._closed:
            self.renderer.render_now()

    def hold_full_detail(self, held: bool) -> None:
        """While ``held``, changes keep the coarse copies on screen where rendering is slow (see
        :mod:`brainview.qt.cortex_render`): the main window holds it while live decoding runs."""
        self.renderer.hold_full_detail(held)

    def render_to_image(self) -> np.ndarray:
        """The rendered surface as an (H, W, 3) uint8 array (``QWidget.grab`` cannot see VTK)."""
        if self._closed:
            raise RuntimeError("the cortex view is closed")
        self.render_now()
        grabber = vtkWindowToImageFilter()
        grabber.SetInput(self._rw)
        grabber.SetInputBufferTypeToRGB()
        grabber.ReadFrontBufferOff()
        grabber.Update()
        image = grabber.GetOutput()
        width, height, _ = image.GetDimensions()
        pixels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, 3)
        return np.ascontiguousarray(pixels[::-1])

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        if not self._initialized:
            self._initialized = True
            self._vtk.Initialize()
        self._request_render()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop listening to the selection and release the render window (also done on close)."""
        if self._closed:
            return
        self._closed = True
        self.renderer.shutdown()
        self._refit_timer.stop()
        if self.selection is not None:
            self.selection.disconnect(self._on_selection_changed)
        self._vtk.removeEventFilter(self)
        self._vtk.Finalize()


def _contains(sorted_ids: np.ndarray, value: int) -> bool:
    position = np.searchsorted(sorted_ids, value)
    return bool(position < sorted_ids.size and sorted_ids[position] == value)


def grab_with_cortex(widget: QWidget) -> QImage:
    """``widget.grab()`` with every visible :class:`QtCortexView` inside painted in (for screenshots)."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    views = widget.findChildren(QtCortexView) + ([widget] if isinstance(widget, QtCortexView) else [])
    painter = QPainter(image)
    for view in views:
        if not view.isVisible() or view._closed:
            continue
        pixels = view.render_to_image()
        height, width, _ = pixels.shape
        shot = QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888)
        painter.drawImage(QRect(view._vtk.mapTo(widget, QPoint(0, 0)), view._vtk.size()), shot)
    painter.end()
    return image
