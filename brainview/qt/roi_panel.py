"""The ROI panel: the bundle's atlas ROIs by group with checkboxes, how the selection becomes a
synthetic pattern (the paper's ROI only ×scale / the manifold projection / the preferred stimuli /
lesion / boost, scale, factor, stage), clear, and ROI files.

The checkboxes and the cortex brush edit the same :class:`~brainview.cortex.selection.RoiSelection`
(held by the session); this panel only mirrors it, so undo (the window's Edit menu and toolbar,
:mod:`brainview.qt.edit_actions`) of a brush stroke or of a check shows up here too.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
                               QHeaderView, QLabel, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from brainview.cortex import roi_io
from brainview.state.session import STAGE_LABELS, Session

MODES = (("roi", "ROI only (paper ×scale)"), ("manifold", "Manifold (natural images)"),
         ("data", "Preferred stimuli (data)"), ("lesion", "Lesion of the current trial"),
         ("boost", "Boost of the current trial"))
ROI_FILTERS = "brainview ROI (*.json);;FreeSurfer label (*.label);;GIFTI label (*.label.gii)"
ROI_OPEN_FILTERS = "ROI files (*.json *.label *.gii);;brainview ROI (*.json);;FreeSurfer label (*.label);;GIFTI (*.gii)"


class QtRoiPanel(QWidget):
    """Atlas ROI checkboxes mirrored from the selection, synthetic-pattern settings, ROI files."""

    error = Signal(str, str)  # title, message: the main window shows it
    message = Signal(str)

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self._selection_listener = None
        self._apply_timer = QTimer(self, singleShot=True, interval=0)
        self._apply_timer.timeout.connect(self._apply_checks)

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["ROI", "voxels"])
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.itemChanged.connect(lambda item, column: self._apply_timer.start())
        self.selection_label = QLabel()
        self.selection_label.setObjectName("muted")
        self.clear_button = QPushButton("Clear", toolTip="Uncheck every ROI and erase all painting (undoable)")
        self.clear_button.clicked.connect(lambda: self.session.selection and self.session.selection.clear())
        edit = QHBoxLayout()
        edit.addWidget(self.selection_label, 1)
        edit.addWidget(self.clear_button)

        self.mode_combo = QComboBox()
        for mode, label in MODES:
            self.mode_combo.addItem(label, mode)
        self.scale_spin = QDoubleSpinBox(minimum=0.1, maximum=1000.0, decimals=1, singleStep=1.0,
                                         toolTip="Norm of each query token of the synthetic pattern "
                                                 "(the paper uses 11)")
        self.factor_spin = QDoubleSpinBox(minimum=-20.0, maximum=20.0, decimals=1, singleStep=0.5,
                                          toolTip="Multiplier applied to the selected voxels of the trial")
        self.stage_combo = QComboBox(toolTip="Which stage's weights decode the synthetic pattern")
        self.mode_combo.currentIndexChanged.connect(self._settings_changed)
        self.scale_spin.valueChanged.connect(self._settings_changed)
        self.factor_spin.valueChanged.connect(self._settings_changed)
        self.stage_combo.currentIndexChanged.connect(self._settings_changed)
        form = QFormLayout()
        form.addRow("Mode", self.mode_combo)
        form.addRow("Scale", self.scale_spin)
        form.addRow("Boost factor", self.factor_spin)
        form.addRow("Stage", self.stage_combo)
        self.form = form

        self.save_button = QPushButton("Save ROI…",
                                       toolTip="Save the selection as brainview JSON, FreeSurfer label or GIFTI")
        self.load_button = QPushButton("Load ROI…", toolTip="Load a brainview JSON, FreeSurfer label or GIFTI ROI")
        self.save_button.clicked.connect(lambda: self.save_dialog())
        self.load_button.clicked.connect(lambda: self.load_dialog())
        files = QHBoxLayout()
        files.addWidget(self.save_button)
        files.addWidget(self.load_button)

        rois_box = QGroupBox("ROIs")
        rois_layout = QVBoxLayout(rois_box)
        rois_layout.addWidget(self.tree, 1)
        rois_layout.addLayout(edit)
        synthetic_box = QGroupBox("Synthetic pattern · decoded live")
        synthetic_layout = QVBoxLayout(synthetic_box)
        synthetic_layout.addLayout(form)
        synthetic_layout.addLayout(files)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(rois_box, 1)
        layout.addWidget(synthetic_box)

        session.connect("bundle", lambda s: self._on_bundle())
        session.connect("synthetic", lambda s: self._show_settings())
        self.setEnabled(False)

    # ----------------------------------------------------------------- bundle

    def _on_bundle(self) -> None:
        session = self.session
        if self._selection_listener is not None and self._selection_listener[0] is not session.selection:
            self._selection_listener[0].disconnect(self._selection_listener[1])
        self._selection_listener = (session.selection, session.selection.on_change(lambda sel: self._mirror()))
        self.tree.blockSignals(True)
        self.tree.clear()
        for group, names in session.roi_groups().items():
            parent = QTreeWidgetItem(self.tree, [group, ""])
            parent.setFlags(parent.flags() | Qt.ItemIsAutoTristate | Qt.ItemIsUserCheckable)
            parent.setCheckState(0, Qt.Unchecked)
            for name in names:
                item = QTreeWidgetItem(parent, [name, str(len(session.bundle.roi_voxels(name)))])
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(0, Qt.Unchecked)
                item.setData(0, Qt.UserRole, name)
                item.setTextAlignment(1, Qt.AlignRight | Qt.AlignVCenter)
            parent.setExpanded(True)
        self.tree.header().setStretchLastSection(False)
        self.tree.header().setSectionResizeMode(0, QHeaderView.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeToContents)
        self.tree.blockSignals(False)
        self.stage_combo.blockSignals(True)
        self.stage_combo.clear()
        for stage in session.stages:
            self.stage_combo.addItem(STAGE_LABELS[stage], stage)
        self.stage_combo.blockSignals(False)
        self._show_settings()
        self._mirror()
        self.setEnabled(True)

    def roi_items(self) -> dict[str, QTreeWidgetItem]:
        items = {}
        for g in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(g)
            for i in range(group.childCount()):
                items[group.child(i).data(0, Qt.UserRole)] = group.child(i)
        return items

    def set_checked(self, names) -> None:
        """Check exactly these ROIs (what a user's clicks do), applied to the selection."""
        names = set(names)
        self.tree.blockSignals(True)
        for name, item in self.roi_items().items():
            item.setCheckState(0, Qt.Checked if name in names else Qt.Unchecked)
        self.tree.blockSignals(False)
        self._apply_checks()

    def set_colors(self, colors: dict[str, tuple[int, int, int]]) -> None:
        """Colour swatches matching the ROI outlines on the cortex (a legend)."""
        for name, item in self.roi_items().items():
            if name in colors:
                swatch = QPixmap(10, 10)
                swatch.fill(QColor(*colors[name]))
                item.setIcon(0, swatch)

    def checked(self) -> list[str]:
        return [name for name, item in self.roi_items().items() if item.checkState(0) == Qt.Checked]

    def _apply_checks(self) -> None:
        """One undo step for a click, even when a group checkbox changed several ROIs."""
        if self.session.selection is not None:
            self.session.selection.set_atlas_rois(self.checked())

    def _mirror(self) -> None:
        selection = self.session.selection
        atlas = set(selection.atlas_rois)
        self.tree.blockSignals(True)
        for name, item in self.roi_items().items():
            item.setCheckState(0, Qt.Checked if name in atlas else Qt.Unchecked)
        self.tree.blockSignals(False)
        painted = selection.painted_vertices()
        text = f"Selection: {selection.voxels().size} voxels"
        if painted.size:
            no_voxel = selection.cortex.without_voxel(painted).size
            text += f" ({painted.size} vertices painted" + (f", {no_voxel} with no voxel: amber)" if no_voxel else ")")
        self.selection_label.setText(text)

    # ----------------------------------------------------------------- settings

    def _show_settings(self) -> None:
        settings = self.session.synthetic
        for widget in (self.mode_combo, self.scale_spin, self.factor_spin, self.stage_combo):
            widget.blockSignals(True)
        self.mode_combo.setCurrentIndex(self.mode_combo.findData(settings.mode))
        self.scale_spin.setValue(settings.scale)
        self.factor_spin.setValue(settings.factor)
        self.stage_combo.setCurrentIndex(max(0, self.stage_combo.findData(settings.stage)))
        for widget in (self.mode_combo, self.scale_spin, self.factor_spin, self.stage_combo):
            widget.blockSignals(False)
        self.form.setRowVisible(self.scale_spin, settings.mode == "roi")
        self.form.setRowVisible(self.factor_spin, settings.mode == "boost")

    def _settings_changed(self, *args) -> None:
        if not self.session.has_bundle:
            return
        self.session.set_synthetic(mode=self.mode_combo.currentData(), scale=self.scale_spin.value(),
                                   factor=self.factor_spin.value(), stage=self.stage_combo.currentData())

    # ----------------------------------------------------------------- files

    def save_dialog(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(self, "Save ROI", "roi.json", ROI_FILTERS)
        if path:
            self.save(path)

    def load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load ROI", "", ROI_OPEN_FILTERS)
        if path:
            self.load(path)

    def save(self, path: str | Path) -> list[Path]:
        """Save the selection; a surface label is written per hemisphere (``lh.NAME``, ``rh.NAME``)."""
        path = Path(path)
        selection = self.session.selection
        try:
            if path.name.endswith((".label", ".label.gii")):
                written = roi_io.export_surface_pair(path, selection)
            else:
                written = [roi_io.save_roi(path, selection, self.session.bundle.name)]
        except Exception as exc:  # noqa: BLE001 - a failed save is reported, never fatal
            self.error.emit("Cannot save the ROI", str(exc))
            return []
        self.message.emit("Saved " + ", ".join(p.name for p in written))
        return written

    def load(self, path: str | Path) -> bool:
        path = Path(path)
        cortex = self.session.cortex
        try:
            roi = roi_io.load_roi(path, cortex) if path.suffix == ".json" else roi_io.import_surface_roi(path, cortex)
            roi.apply_to(self.session.selection)
        except Exception as exc:  # noqa: BLE001 - a bad file is reported, never fatal
            self.error.emit("Cannot load the ROI", str(exc))
            return False
        self.message.emit(f"Loaded {path.name}: {roi.voxels.size} voxels")
        return True
