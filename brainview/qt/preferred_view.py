"""The preferred-stimuli view: the test images the selected region responds to most, with their
references, and whether what they share beats random voxel sets of the same size
(:mod:`brainview.analysis.preferred`).

Live like the ROI panel's other modes: while the mode is "Preferred stimuli", every change of the
selection is computed again in a worker (the newest wins) and shown here.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QDockWidget, QGridLayout, QHeaderView, QLabel, QMainWindow,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from brainview.analysis.preferred import PreferredStimuli, preferred_stimuli
from brainview.qt.thumbnails import QtThumbnail, stimulus_thumbnail
from brainview.qt.workers import QtLatestRunner, QtWorkers
from brainview.state.session import Session

COLUMNS = ("labels", "top label", "in top", "p", "enrich.", "random 95%", "overall")
PER_ROW = 5
WIDTH = 640  # the dock's width when it first shows: the checks' seven columns fit...
WINDOW_SHARE = 0.4  # ...unless that is more than this share of the window (at 1366 px the trial view needs the rest)


class QtPreferredStimuli(QWidget):
    """The top test images of the selection by mean response, the consistency checks and the words."""

    wanted = Signal()  # the mode turned to preferred stimuli: the window shows this view
    failed = Signal(object)

    def __init__(self, session: Session, workers: QtWorkers, parent=None):
        super().__init__(parent)
        self.session = session
        self.found: PreferredStimuli | None = None
        self.runner = QtLatestRunner(workers, delay_ms=100, parent=self)
        self.runner.result.connect(self.show_found)
        self.runner.failed.connect(self.failed)
        self._listener = None
        self.title = QLabel(wordWrap=True)
        self.grid = QGridLayout()
        self.grid.setSpacing(6)
        self.thumbnails: list[QtThumbnail] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.setToolTip("Per labelling of the trials: the label most enriched among the top images, how many "
                              "of them carry it, the permutation p-value (bold: below 0.05), the enrichment (share in "
                              "the top less share overall), the 95th percentile of the same statistic for random "
                              "voxel sets of the region's size, and the label's share over all trials")
        self.words = QLabel(wordWrap=True)
        self.words.setObjectName("muted")
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(self.grid)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.words)
        session.connect("bundle", lambda s: self._on_bundle())
        session.connect("synthetic", lambda s: self.refresh())
        self.show_message("Choose the mode “Preferred stimuli” and select or paint a region.")

    @property
    def active(self) -> bool:
        return self.session.has_bundle and self.session.synthetic.mode == "data"

    def _on_bundle(self) -> None:
        if self._listener is not None:
            self._listener[0].disconnect(self._listener[1])
        selection = self.session.selection
        self._listener = (selection, selection.on_change(lambda sel: self.refresh()))
        self.runner.cancel()
        self.refresh()

    def refresh(self) -> None:
        """Compute the current selection's preferred stimuli again (in a worker) when the mode asks for them."""
        if not self.active:
            self.runner.cancel()
            return
        self.wanted.emit()
        voxels = self.session.selection.voxels()
        if voxels.size == 0:
            self.runner.cancel()
            self.show_message("Select or paint a region: its most driving test images show here.")
            return
        self.title.setText(f"Finding the test images {voxels.size} voxels respond to most…")
        self.runner.submit(preferred_stimuli, self.session.bundle, voxels)

    def show_message(self, text: str) -> None:
        self.found = None
        self.title.setText(text)
        self._fill_images([])
        self.table.setRowCount(0)
        self.words.setText("")

    def show_found(self, found: PreferredStimuli) -> None:
        if not self.active:
            return
        self.found = found
        draws = found.consistency[0].control.size if found.consistency else 0
        self.title.setText(f"The {len(found.trials)} test images a region of {found.n_voxels} voxels responds to "
                           f"most (mean normalised response), against {draws} random voxel sets of the same size")
        self._fill_images(found.trials)
        self.table.setRowCount(len(found.consistency))
        for row, check in enumerate(found.consistency):
            cells = (check.field, check.value, f"{check.count}/{check.top}", f"{check.p_value:.3f}",
                     f"{check.enrichment:+.2f}", f"{np.quantile(check.control, 0.95):+.2f}", f"{check.base_share:.0%}")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if check.p_value < 0.05:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(row, column, item)
        self.words.setText("Their references most often say: " + ", ".join(f"{w} ({n})" for w, n in found.words))

    def _fill_images(self, trials) -> None:
        while len(self.thumbnails) > len(trials):
            self.thumbnails.pop().deleteLater()
        while len(self.thumbnails) < len(trials):
            thumb = QtThumbnail(self)
            self.grid.addWidget(thumb, len(self.thumbnails) // PER_ROW, len(self.thumbnails) % PER_ROW, Qt.AlignTop)
            self.thumbnails.append(thumb)
        for rank, (thumb, trial) in enumerate(zip(self.thumbnails, trials), start=1):
            trial = int(trial)
            references = "\n".join(self.session.references(trial))
            thumb.show_candidate(stimulus_thumbnail(self.session, trial), rank, float(self.found.response[trial]),
                                 False, f"trial {self.session.trial_id(trial)}\n{references}")


def add_preferred_dock(window: QMainWindow, session: Session, workers: QtWorkers
                       ) -> tuple[QtPreferredStimuli, QDockWidget]:
    """The view in a right-hand dock of ``window``, hidden until the mode asks for it, then opened
    wide enough for its table; its failures go to ``window.worker_failed``."""
    view = QtPreferredStimuli(session, workers)
    dock = QDockWidget("Preferred stimuli", window, objectName="preferred_dock")
    dock.setWidget(view)
    window.addDockWidget(Qt.RightDockWidgetArea, dock)
    dock.hide()

    def show() -> None:
        if not dock.isVisible():
            dock.show()
            window.resizeDocks([dock], [min(WIDTH, int(WINDOW_SHARE * window.width()))], Qt.Horizontal)
        dock.raise_()  # in front where it shares the right-hand area as a tab

    view.wanted.connect(show)
    view.failed.connect(window.worker_failed)
    return view, dock
