"""The cortex view's toolbar (surface, camera preset, colormap, range, brush) and the choices it offers.
Undo and Redo are the window's (:mod:`brainview.qt.edit_actions`): one pair for the one selection."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QToolBar, QToolButton, QWidget

from brainview.cortex import SURFACES

#: per preset and hemisphere: direction the camera looks in, and the screen's up direction
VIEWS = {
    "lateral": {"lh": ((1, 0, 0), (0, 0, 1)), "rh": ((-1, 0, 0), (0, 0, 1))},
    "medial": {"lh": ((-1, 0, 0), (0, 0, 1)), "rh": ((1, 0, 0), (0, 0, 1))},
    "ventral": {"lh": ((0, 0, 1), (0, -1, 0)), "rh": ((0, 0, 1), (0, -1, 0))},
    "posterior": {"lh": ((0, 1, 0), (0, 0, 1)), "rh": ((0, 1, 0), (0, 0, 1))},
}
#: the flatmap lies in z = 0 with its normals along +z: seen from above, dorsal up, whatever the preset
FLAT_VIEW = ((0, 0, -1), (0, 1, 0))
COLORMAPS = ("RdBu_r", "coolwarm", "seismic", "viridis", "inferno", "hot", "cividis")


class QtCortexControls(QWidget):
    """A one-line toolbar for the cortex view that creates it and hands itself in (a
    :class:`~brainview.qt.cortex_view.QtCortexView`; named in words, not imported, so that the view
    imports its controls and never the other way round): surface, view, colormap, range, brush."""

    changed = Signal()  # the view's state was shown again (the window's brush actions follow it)

    def __init__(self, view: QWidget):
        super().__init__(view)
        self.view = view
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.surface = QComboBox(toolTip="surface")
        self.surface.addItems(SURFACES)
        self.view_preset = QComboBox(toolTip="camera preset")
        self.view_preset.addItems(VIEWS)
        self.cmap = QComboBox(toolTip="overlay colormap")
        self.cmap.addItems(COLORMAPS)
        self.threshold = QDoubleSpinBox(toolTip="hide overlay values whose magnitude is below this",
                                        decimals=3, maximum=1e6, singleStep=0.1, prefix="thr ")
        self.vmax = QDoubleSpinBox(toolTip="top of the colour range (auto: the largest magnitude)",
                                   decimals=3, maximum=1e6, singleStep=0.1, specialValueText="max auto")
        for spin in (self.threshold, self.vmax):
            spin.setMaximumWidth(105)  # room for "thr 12.345", not for the 1e6 its range allows
        self.symmetric = QCheckBox("±", toolTip="symmetric colour range around zero", checked=True)
        self.brush = QToolButton(text="Brush", checkable=True,
                                 toolTip="paint with left drag, erase with right drag or Shift (B)")
        self.erase = QToolButton(text="Erase", checkable=True, toolTip="left drag erases (E)")
        for button in (self.brush, self.erase):  # on and off must look different at a glance
            button.setStyleSheet("QToolButton:checked { background: #2a82da; color: white; font-weight: bold; }")
        self.radius = QDoubleSpinBox(toolTip="brush radius along the surface ([ and ])", decimals=1, minimum=0.5,
                                     maximum=50.0, value=view.brush_radius, suffix=" mm")
        # a tool bar, not a row of widgets: where the cortex is narrow (a 1366 px screen) what does not
        # fit goes behind its » button instead of forcing the whole window wider
        self.bar = QToolBar(movable=False, floatable=False)
        actions = {widget: self.bar.addWidget(widget) for widget in (
            self.surface, self.view_preset, self.cmap, self.threshold, self.vmax, self.symmetric, self.brush,
            self.erase, self.radius)}
        self._preset_action = actions[self.view_preset]
        layout.addWidget(self.bar, 1)
        self.surface.currentTextChanged.connect(view.set_surface)
        self.view_preset.currentTextChanged.connect(view.set_view)
        self.cmap.currentTextChanged.connect(lambda name: view.update_overlay_style(cmap=name))
        self.threshold.valueChanged.connect(lambda value: view.update_overlay_style(threshold=value))
        self.vmax.valueChanged.connect(lambda value: view.update_overlay_style(vmax=value or None))
        self.symmetric.toggled.connect(lambda on: view.update_overlay_style(symmetric=on))
        self.brush.toggled.connect(view.set_brush_enabled)
        self.radius.valueChanged.connect(view.set_brush_radius)
        self.erase.toggled.connect(view.set_brush_erase)

    def set_surfaces(self, surfaces) -> None:
        """Offer the surfaces the current cortex has (``flat`` only with a flatmap)."""
        self.surface.blockSignals(True)
        self.surface.clear()
        self.surface.addItems(list(surfaces))
        self.surface.blockSignals(False)
        self.sync()

    def sync(self) -> None:
        """Show the view's state without echoing changes back to it."""
        view = self.view
        self._preset_action.setVisible(view.surface != "flat")  # the flatmap is seen from above: no "lateral"
        style = view.overlay_style
        for widget, setter, value in (
                (self.surface, self.surface.setCurrentText, view.surface),
                (self.view_preset, self.view_preset.setCurrentText, view.view),
                (self.cmap, self.cmap.setCurrentText, style["cmap"]),
                (self.threshold, self.threshold.setValue, style["threshold"] or 0.0),
                (self.vmax, self.vmax.setValue, style["vmax"] or 0.0),
                (self.symmetric, self.symmetric.setChecked, style["symmetric"]),
                (self.brush, self.brush.setChecked, view.brush_enabled),
                (self.erase, self.erase.setChecked, view.brush_erase),
                (self.radius, self.radius.setValue, view.brush_radius)):
            if isinstance(widget, QDoubleSpinBox) and widget.value() == value:
                continue  # rewriting a box being typed in would reset its text ("4.65" became 4650)
            widget.blockSignals(True)
            setter(value)
            widget.blockSignals(False)
        self.changed.emit()
