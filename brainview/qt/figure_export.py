"""Figures of the cortex at any resolution: an off-screen VTK render at the size the figure needs (not an
upscaled screen grab), placed by :mod:`brainview.analysis.figures` with its colour bar and ROI legend; and the
File → Export figure… dialog.

The render reuses the view's meshes and colour layers with new actors in a separate off-screen
render window, so the on-screen view, its cameras and its GL context are left alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QLabel,
                               QSpinBox, QWidget)
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonCore import VTK_UNSIGNED_CHAR
from vtkmodules.vtkCommonDataModel import vtkPolyData
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper, vtkRenderer, vtkWindowToImageFilter

from brainview.analysis.figures import (MAX_SIDE, MIN_SIDE, ColorBar, check_figure_size, check_output, cortex_area,
                                        figure_memory, save_cortex_figure)
from brainview.errors import UserError
from brainview.qt import dialogs
from brainview.qt.cortex_view import QtCortexView
from brainview.qt.vtk_offscreen import make_offscreen_window

WHITE = (1.0, 1.0, 1.0)


def render_cortex(view: QtCortexView, width: int, height: int, transparent: bool = False,
                  selection: bool = False) -> np.ndarray:
    """Both hemispheres of ``view`` side by side as an (height, width, 4) uint8 RGBA image rendered at that size.

    The cameras follow the view's preset, refitted to the new aspect, unless the user moved them, in
    which case they are copied. Without ``selection`` the painted/selected fill is left out.
    """
    window = make_offscreen_window()
    window.SetSize(int(width), int(height))
    window.SetAlphaBitPlanes(1)
    window.SetMultiSamples(0)
    keep = []
    scenes = view.scenes
    for i, (hemi, scene) in enumerate(scenes.items()):
        polydata = vtkPolyData()
        polydata.ShallowCopy(scene.polydata)
        colors = numpy_to_vtk(scene.layered_colors(fill=selection), deep=True, array_type=VTK_UNSIGNED_CHAR)
        polydata.GetPointData().SetScalars(colors)
        mapper = vtkPolyDataMapper()
        mapper.SetInputData(polydata)
        mapper.SetColorModeToDirectScalars()
        actor = vtkActor()
        actor.SetMapper(mapper)
        actor.GetProperty().DeepCopy(scene.actor.GetProperty())
        renderer = vtkRenderer()
        renderer.SetBackground(*WHITE)
        renderer.SetBackgroundAlpha(0.0 if transparent else 1.0)
        renderer.AddActor(actor)
        renderer.SetViewport(i / len(scenes), 0.0, (i + 1) / len(scenes), 1.0)
        window.AddRenderer(renderer)
        aspect = (width / len(scenes)) / height
        if view.camera_moved:
            renderer.GetActiveCamera().DeepCopy(scene.renderer.GetActiveCamera())
            renderer.ResetCameraClippingRange()
        else:
            view.fit_camera(scene, hemi, aspect, renderer)
        keep.append((polydata, mapper, actor, renderer))
    window.Render()
    grabber = vtkWindowToImageFilter()
    grabber.SetInput(window)
    grabber.SetInputBufferTypeToRGBA()
    grabber.ReadFrontBufferOff()
    grabber.Update()
    image = grabber.GetOutput()
    w, h, _ = image.GetDimensions()
    pixels = np.ascontiguousarray(vtk_to_numpy(image.GetPointData().GetScalars()).reshape(h, w, 4)[::-1])
    window.Finalize()
    if not transparent:
        pixels[..., 3] = 255
    return pixels


def export_cortex_figure(view: QtCortexView, out: str | Path, width: int, height: int, *, title: str = "",
                         overlay_label: str = "", legend_rois: list[str] | None = None, transparent: bool = False,
                         selection: bool = False) -> Path:
    """Render ``view`` for a ``width`` × ``height`` figure and save it with colour bar and ROI legend.

    The colour bar shows the colormap and range the view draws the overlay with; the legend names the
    outlined ROIs (``legend_rois``: those to name, default all) in their outline colours. The size and
    the path are checked before anything is rendered."""
    check_figure_size(width, height)
    check_output(out)
    image = render_cortex(view, *cortex_area(width, height), transparent=transparent, selection=selection)
    limits = view.color_range()
    bar = None if limits is None else ColorBar(view.overlay_style["cmap"], limits[0], limits[1], overlay_label)
    colors = view.roi_outline_colors
    legend = {name: colors[name] for name in (legend_rois if legend_rois is not None else colors) if name in colors}
    return save_cortex_figure(out, image, width, height, title=title, colorbar=bar, legend=legend,
                              transparent=transparent)


class QtFigureDialog(QDialog):
    """Size (pixels or a multiple of the cortex view on screen), background and what to draw."""

    def __init__(self, base_size: tuple[int, int], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export figure")
        self.base_size = base_size
        self.what = QComboBox()
        self.what.addItem("Cortex with colour bar and legend", "cortex")
        self.what.addItem("Trial panel (stimulus, captions, retrievals)", "trial")
        self.scale = QComboBox(toolTip="Multiple of the cortex view's size on screen")
        for factor in (1, 2, 3, 4, 6):
            self.scale.addItem(f"{factor}× screen size", factor)
        self.scale.addItem("custom", None)
        self.width_spin = QSpinBox(minimum=MIN_SIDE, maximum=MAX_SIDE, suffix=" px")
        self.height_spin = QSpinBox(minimum=MIN_SIDE, maximum=MAX_SIDE, suffix=" px")
        self.memory = QLabel()
        self.transparent = QCheckBox("Transparent background")
        self.selection = QCheckBox("Draw the selection (painted and checked ROIs)")
        self.scale.currentIndexChanged.connect(self._scale_chosen)
        self.width_spin.valueChanged.connect(self._size_edited)
        self.height_spin.valueChanged.connect(self._size_edited)
        form = QFormLayout(self)
        form.addRow("Figure", self.what)
        form.addRow("Size", self.scale)
        form.addRow("Width", self.width_spin)
        form.addRow("Height", self.height_spin)
        form.addRow("Memory", self.memory)
        form.addRow(self.transparent)
        form.addRow(self.selection)
        buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.scale.setCurrentIndex(2)  # 3×: print resolution for a typical screen
        self._scale_chosen()
        self._show_memory()

    def _scale_chosen(self) -> None:
        factor = self.scale.currentData()
        if factor is None:
            return
        for spin, value in ((self.width_spin, self.base_size[0]), (self.height_spin, self.base_size[1])):
            spin.blockSignals(True)
            spin.setValue(int(value * factor))
            spin.blockSignals(False)
        self._show_memory()

    def _size_edited(self) -> None:
        self.scale.blockSignals(True)
        self.scale.setCurrentIndex(self.scale.count() - 1)
        self.scale.blockSignals(False)
        self._show_memory()

    def _show_memory(self) -> None:
        self.memory.setText(f"about {figure_memory(*self.size_px) / 2**30:.2f} GiB to render")

    def accept(self) -> None:
        """Save only a size the machine can render; otherwise say why and stay open."""
        try:
            check_figure_size(*self.size_px)
        except UserError as exc:
            dialogs.show_error(self, "Figure too large", str(exc))
            return
        super().accept()

    @property
    def size_px(self) -> tuple[int, int]:
        return self.width_spin.value(), self.height_spin.value()


def choose_figure_path(parent: QWidget, name: str = "brainview-figure.png") -> str:
    path, _ = QFileDialog.getSaveFileName(parent, "Export figure", name,
                                          "PNG image (*.png);;SVG drawing (*.svg);;PDF document (*.pdf)")
    return path


def figure(path: str | Path, out: str | Path, *, size: tuple[int, int], trial: int = 0, rois: tuple[str, ...] = (),
           surface: str = "inflated", view: str = "lateral", overlay: str = "trial", transparent: bool = False,
           what: str = "cortex", title: str = "", device: str = "cpu", k: int = 5) -> Path:
    """``brainview figure``: the cortex (or the trial panel) of a bundle as a PNG, SVG or PDF, headless.

    ``rois`` are selected (the synthetic overlay decodes them) and outlined; with none, every ROI is
    outlined. Raises ``UserError`` for a broken bundle, an unknown ROI, surface or overlay."""
    from brainview.analysis.figures import make_overlay, save_trial_figure
    from brainview.qt.application import application
    from brainview.qt.cortex_controls import VIEWS
    from brainview.state.headless import headless_session

    check_output(out)
    check_figure_size(*size)
    application()
    session = headless_session(str(path), device, captions=what == "trial")
    session.set_trial(trial)
    unknown = [name for name in rois if name not in session.bundle.rois]
    if unknown:
        raise UserError(f"unknown ROI {unknown[0]!r}; this bundle has {', '.join(session.bundle.rois)}")
    if what == "trial":
        if session.can_caption:
            session.store_captions(session.caption_trial())
        return save_trial_figure(out, session, *size, k=k, transparent=transparent)
    if surface not in session.cortex.surfaces:
        raise UserError(f"this bundle has no {surface} surface; it has {', '.join(session.cortex.surfaces)}")
    if view not in VIEWS:
        raise UserError(f"unknown view {view!r}; choose from {', '.join(VIEWS)}")
    session.selection.set_atlas_rois(rois)
    shown = make_overlay(session, overlay)
    cortex_view = QtCortexView()
    try:
        cortex_view.set_cortex(session.cortex)
        cortex_view.set_selection_model(session.selection)
        names = list(rois) or list(session.bundle.rois)
        cortex_view.set_roi_outlines({name: session.bundle.roi_voxels(name) for name in names})
        cortex_view.set_surface(surface)
        cortex_view.set_view(view)
        cortex_view.set_overlay(shown.values, symmetric=shown.symmetric)
        return export_cortex_figure(cortex_view, out, *size, title=title, overlay_label=shown.label,
                                    transparent=transparent)
    finally:
        cortex_view.shutdown()
        cortex_view.deleteLater()
