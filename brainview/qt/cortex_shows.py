"""What the cortex shows — the trial's fMRI pattern, the selection's synthetic pattern or a concept map — and
when it is recoloured.

The "Cortex shows" chooser follows the selection (its synthetic pattern while there is one, the trial's pattern
otherwise) until the user picks a source; a new bundle starts following again. Recolouring every vertex is slow
at fsaverage size, so a change of kind is recoloured on a short timer, never inside a brush dab's handler, and
the synthetic pattern once its decoding is on screen.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QComboBox

from brainview.analysis.figures import Overlay, make_overlay

SOURCES = (("trial fMRI pattern", "trial"), ("synthetic pattern", "synthetic"), ("concept map", "concept"))
RECOLOUR_DELAY_MS = 50  # lets a new caption paint first


class QtCortexShows(QObject):
    """The chooser (``combo``, placed in the window's toolbar) and the cortex view's overlay that follows it."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.combo = QComboBox(toolTip="What the cortex shows: the trial's fMRI pattern, the selection's synthetic "
                                       "pattern or a phrase's concept map")
        for label, source in SOURCES:
            self.combo.addItem(label, source)
        self.combo.activated.connect(self._chosen)
        self.follows_selection = True
        self.timer = QTimer(self, singleShot=True, interval=RECOLOUR_DELAY_MS)
        self.timer.timeout.connect(self.update)

    @property
    def source(self) -> str:
        return self.combo.currentData()

    def _set(self, source: str) -> None:
        self.combo.setCurrentIndex(self.combo.findData(source))

    def choose(self, source: str) -> None:
        """Show ``source`` (``"trial"``, ``"synthetic"`` or ``"concept"``) as the user would: it stops following."""
        self._set(source)
        self._chosen()

    def _chosen(self) -> None:
        self.follows_selection = False
        self.update()

    def restore(self, source: str, follows_selection: bool) -> None:
        """A session's choice: its source, and whether it still followed the selection."""
        self.choose(source)
        self.follows_selection = follows_selection

    def reset(self) -> None:
        """A new bundle: its selection is empty and the old concept map is gone; follow the selection again."""
        self.follows_selection = True
        self._set("trial")
        self.update()

    def selection_changed(self, has_voxels: bool) -> None:
        """Follow the selection; a change of kind (or an emptied selection) is recoloured soon, not in this
        handler, which must leave the GUI thread within a frame."""
        shown = self.source
        if self.follows_selection:
            self._set("synthetic" if has_voxels else "trial")
        if self.source != shown or not has_voxels:
            self.timer.start()

    def show_concept(self) -> None:
        """A concept map arrived: show it (the next selection change shows the selection again)."""
        self._set("concept")
        self.update()

    def current(self) -> Overlay:
        """What the cortex shows now: the trial's pattern, the selection's synthetic one (an ROI-only pattern is
        uncoloured outside the selection) or the concept map, as a figure would show it."""
        session = self.window.session
        if self.source == "concept" and session.language.concept is not None:
            return make_overlay(session, "concept")
        synthetic = self.source == "synthetic" and session.selection.voxels().size
        return make_overlay(session, "synthetic" if synthetic else "trial")

    def values(self) -> np.ndarray:
        """Per-vertex values the cortex shows now."""
        return self.current().values

    def update(self) -> None:
        """Recolour the cortex with what it shows, each overlay with its own colour map, threshold and range
        (incremental: only the vertices whose value changed)."""
        window = self.window
        if window.cortex_view is None or not window.session.has_bundle:
            return
        window.overlay_list.shown_changed()
        window.cortex_view.set_overlay(self.values())

    def stop(self) -> None:
        self.timer.stop()
