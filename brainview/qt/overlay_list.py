"""The overlay list (napari's layer list, FSLeyes' overlay list) for the cortex: one row per layer of
:mod:`brainview.state.overlays` with its visibility, and the chosen layer's colour map, threshold, range
and opacity below. Each data layer keeps its own settings: the one the cortex shows is drawn with its
own, and the cortex tool bar's controls edit that one."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHeaderView, QLabel, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from brainview.qt.cortex_controls import COLORMAPS
from brainview.state.overlays import DATA_LAYERS, LAYER_LABELS, LAYERS, OverlayLayers

VIEW_KEYS = ("cmap", "threshold", "vmin", "vmax", "symmetric", "visible", "opacity")


class QtOverlayList(QWidget):
    """The layers with their visibility; the chosen one's settings. ``view`` is the cortex view (or None)."""

    show_layer = Signal(str)  # the user turned a data layer on: the cortex should show it

    def __init__(self, layers: OverlayLayers, view, shown: Callable[[], str], parent: QWidget | None = None):
        super().__init__(parent)
        self.layers, self.view, self.shown = layers, view, shown
        self._applied: str | None = None  # the data layer whose settings the cortex draws with
        self._busy = False  # echoes of our own changes are ignored

        self.tree = QTreeWidget(rootIsDecorated=False, uniformRowHeights=True)
        self.tree.setHeaderLabels(["Overlay", "Settings"])
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.tree.header().setStretchLastSection(True)
        self.items: dict[str, QTreeWidgetItem] = {}
        for name in LAYERS:
            item = QTreeWidgetItem(self.tree, [LAYER_LABELS[name], ""])
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setData(0, Qt.UserRole, name)
            self.items[name] = item
        self.tree.itemChanged.connect(self._checked)
        self.tree.currentItemChanged.connect(lambda *_: self._show_form())

        self.cmap = QComboBox()
        self.cmap.addItems(COLORMAPS)
        self.threshold = QDoubleSpinBox(decimals=3, maximum=1e6, singleStep=0.1, specialValueText="none",
                                        toolTip="values whose magnitude is below this stay uncoloured")
        self.vmin = QDoubleSpinBox(decimals=3, minimum=-1e6, maximum=1e6, singleStep=0.1,
                                   toolTip="bottom of the colour range (when not symmetric)")
        self.vmax = QDoubleSpinBox(decimals=3, maximum=1e6, singleStep=0.1, specialValueText="auto",
                                   toolTip="top of the colour range (auto: the data's own)")
        self.symmetric = QCheckBox("symmetric around zero")
        self.opacity = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=1.0, singleStep=0.1)
        self.form = QFormLayout()
        for label, widget in (("Colour map", self.cmap), ("Threshold", self.threshold), ("Range from", self.vmin),
                              ("Range to", self.vmax), ("", self.symmetric), ("Opacity", self.opacity)):
            self.form.addRow(label, widget)
        self.cmap.currentTextChanged.connect(lambda name: self._edit(cmap=name))
        self.threshold.valueChanged.connect(lambda value: self._edit(threshold=value or None))
        self.vmin.valueChanged.connect(lambda value: self._edit(vmin=value))
        self.vmax.valueChanged.connect(lambda value: self._edit(vmax=value or None))
        self.symmetric.toggled.connect(lambda on: self._edit(symmetric=on))
        self.opacity.valueChanged.connect(lambda value: self._edit(opacity=value))
        hint = QLabel("The cortex shows one pattern at a time (its settings here and in the cortex tool bar); "
                      "the selection and the outlines are drawn over it.", wordWrap=True)
        hint.setObjectName("muted")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree, 1)
        layout.addLayout(self.form)
        layout.addWidget(hint)
        if view is not None:
            view.style_changed.connect(self._view_style_changed)
        self.tree.setCurrentItem(self.items["trial"])
        self.refresh()

    # -- showing ---------------------------------------------------------------------------------
    def current(self) -> str:
        return self.tree.currentItem().data(0, Qt.UserRole)

    def refresh(self) -> None:
        """Rows and form from the layers (no echo)."""
        self._busy = True
        self.tree.blockSignals(True)
        shown = self.shown()
        for name, item in self.items.items():
            style = self.layers.style(name)
            on = style.visible and (name == shown or name not in DATA_LAYERS)
            item.setCheckState(0, Qt.Checked if on else Qt.Unchecked)
            parts = [] if name in ("selection", "outlines") else [style.cmap]
            if name in DATA_LAYERS and style.threshold:
                parts.append(f"thr {style.threshold:.3g}")
            if name != "outlines":
                parts.append(f"{style.opacity:.0%}")
            if name == shown:
                parts.append("on the cortex")
            item.setText(1, " · ".join(parts))
        self.tree.blockSignals(False)
        self._busy = False
        self._show_form()

    def _show_form(self) -> None:
        name = self.current()
        style = self.layers.style(name)
        self._busy = True
        for widget, setter, value in ((self.cmap, self.cmap.setCurrentText, style.cmap),
                                      (self.threshold, self.threshold.setValue, style.threshold or 0.0),
                                      (self.vmin, self.vmin.setValue, style.vmin or 0.0),
                                      (self.vmax, self.vmax.setValue, style.vmax or 0.0),
                                      (self.symmetric, self.symmetric.setChecked, style.symmetric),
                                      (self.opacity, self.opacity.setValue, style.opacity)):
            if isinstance(widget, QDoubleSpinBox) and widget.value() == value:
                continue  # rewriting a box being typed in would reset its text under the cursor
            widget.blockSignals(True)
            setter(value)
            widget.blockSignals(False)
        colours = name in DATA_LAYERS
        for widget in (self.cmap, self.threshold, self.vmax, self.symmetric):
            self.form.setRowVisible(widget, colours)
        self.form.setRowVisible(self.vmin, colours and not style.symmetric)
        self.form.setRowVisible(self.opacity, name != "outlines")
        self._busy = False

    # -- editing ---------------------------------------------------------------------------------
    def _edit(self, **changes) -> None:
        if self._busy:
            return
        name = self.current()
        self.layers.update(name, **changes)
        self.apply(name)

    def _checked(self, item: QTreeWidgetItem, column: int) -> None:
        if self._busy or column != 0:
            return
        name = item.data(0, Qt.UserRole)
        on = item.checkState(0) == Qt.Checked
        self.layers.update(name, visible=on)
        if on and name in DATA_LAYERS and name != self.shown():
            self.show_layer.emit(name)  # the window switches the cortex to it, then calls shown_changed
        self.apply(name)

    def apply(self, name: str) -> None:
        """Draw layer ``name`` with its settings (a data layer only while the cortex shows it)."""
        view, style = self.view, self.layers.style(name)
        if view is not None:
            self._busy = True
            try:
                if name == "selection":
                    view.set_selection_look(style.visible, style.opacity)
                elif name == "outlines":
                    view.set_outlines_visible(style.visible)
                elif name == self.shown():
                    self._applied = name
                    view.set_overlay_label(LAYER_LABELS[name])
                    view.update_overlay_style(**{key: getattr(style, key) for key in VIEW_KEYS})
            finally:
                self._busy = False
        self.refresh()

    def apply_all(self) -> None:
        for name in ("selection", "outlines", self.shown()):
            self.apply(name)

    def shown_changed(self) -> None:
        """The cortex shows another data layer: draw it with its own settings."""
        if self.shown() != self._applied:
            self.apply(self.shown())

    def _view_style_changed(self) -> None:
        """The cortex tool bar changed the shown layer's settings: keep them as that layer's."""
        if self._busy or self._applied is None:
            return
        style = self.view.overlay_style
        self.layers.update(self._applied, **{key: style[key] for key in VIEW_KEYS})
        self.refresh()
