"""The *Repeats* panel: the current trial decoded from the mean of its repeats and from each one alone
(true image rank, first image, caption), how well the single repeats agree, and a *Repeats* choice whose
pattern's top-k images are shown. Computed by :func:`brainview.state.repeats.trial_repeats` in a worker.

The choice is also the session's (``session.repeats``): the trial view, the trial table's ranks and the
failure hunt follow it, once every trial's chosen repeat is predicted (a worker's pass over the weights)."""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from brainview.qt.thumbnails import QtRetrievalRow
from brainview.qt.workers import QtLatestRunner, QtWorkers
from brainview.state.repeat_choice import iter_repeat_predictions
from brainview.state.repeats import MEAN, TrialRepeats, repeat_choices, trial_repeats
from brainview.state.session import STAGE_LABELS, Session

CHOSEN_COLOUR = "#34506e"


def source_label(source: str | int) -> str:
    return "mean of all" if source == MEAN else f"repeat {source}"


class QtRepeatsPanel(QWidget):
    """Single trials of the current trial, beside their mean."""

    COLUMNS = ("pattern", "true image rank", "first image", "caption")

    def __init__(self, session: Session, workers: QtWorkers, parent=None):
        super().__init__(parent)
        self.session = session
        self.result: TrialRepeats | None = None
        self.workers = workers
        self.choice = QComboBox(toolTip="The pattern the app decodes: the mean of each trial's repeats or one "
                                        "repeat (the trial view, the trial table's ranks and the failure hunt)")
        self.choice.currentIndexChanged.connect(lambda _: self._show_choice())
        self.choice.currentIndexChanged.connect(lambda _: self._choose())
        self.predicting = None  # the worker predicting every trial's chosen repeat
        self.status = QLabel(wordWrap=True)
        self.status.setObjectName("muted")
        self.agreement = QLabel(wordWrap=True)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.NoSelection)
        self.table.setWordWrap(True)
        self.images = QtRetrievalRow()
        row = QHBoxLayout()
        row.addWidget(QLabel("Repeats"))
        row.addWidget(self.choice, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.agreement)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.images)
        self.runner = QtLatestRunner(workers, delay_ms=0, parent=self)
        self.runner.result.connect(self._show)
        self.runner.failed.connect(lambda exc: self.agreement.setText(f"cannot decode the repeats: {exc}"))
        for event in ("bundle", "trial", "stage", "decoder", "k"):
            session.connect(event, lambda s: self.refresh())
        session.repeats.connect("choice", lambda r: self._sync_choice())
        self.refresh()

    def refresh(self) -> None:
        """Fill the choice for the bundle and decode the current trial's repeats in a worker."""
        session = self.session
        choices = repeat_choices(session.bundle) if session.has_bundle else [MEAN]
        if [self.choice.itemData(i) for i in range(self.choice.count())] != choices:
            self.choice.blockSignals(True)
            self.choice.clear()
            for source in choices:
                self.choice.addItem(source_label(source), source)
            self.choice.blockSignals(False)
        self.result = None
        self.table.setRowCount(0)
        self.images.show_message("")
        if not session.has_bundle or session.decoder is None:
            self.agreement.setText("Open a bundle to see its trials' single repeats.")
            return
        if session.bundle.fmri_repeats is None:
            self.agreement.setText("This bundle holds only each image's mean pattern (no test/fmri_repeats.npy).")
            return
        self.agreement.setText("decoding each repeat…")
        self.runner.submit(trial_repeats, session.bundle, session.decoder, session.trial, session.stage,
                           session.can_caption, session.model_lock, session.k)

    def _show(self, result: TrialRepeats) -> None:
        session = self.session
        if not session.has_bundle or result.trial != session.trial or result.stage != session.stage:
            return  # an older trial's
        self.result = result
        self.table.setRowCount(len(result.rows))
        for r, row in enumerate(result.rows):
            cells = (source_label(row.source), str(row.image_rank), session.trial_id(row.top_image),
                     row.caption if row.caption is not None else "captions are off")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 1 and row.image_rank == 1:
                    item.setForeground(QColor("#5fd35f"))
                self.table.setItem(r, c, item)
        self.table.resizeRowsToContents()
        agree = ("one repeat: nothing to compare" if result.token_agreement is None else
                 f"Do single repeats agree? token cosine {result.token_agreement:.2f} between repeats, "
                 f"{result.top_image_agreement:.0%} of pairs retrieve the same first image "
                 f"(true image rank {min(r.image_rank for r in result.rows[1:])}–"
                 f"{max(r.image_rank for r in result.rows[1:])} across repeats, "
                 f"{result.rows[0].image_rank} from their mean) · {STAGE_LABELS[result.stage]}")
        self.agreement.setText(agree)
        self._show_choice()

    def _show_choice(self) -> None:
        """Highlight the chosen pattern's row and show the images it retrieves."""
        if self.result is None:
            return
        source = self.choice.currentData()
        for r, row in enumerate(self.result.rows):
            for c in range(self.table.columnCount()):
                item = self.table.item(r, c)
                if item is not None:
                    item.setBackground(QColor(CHOSEN_COLOUR) if row.source == source else QColor(0, 0, 0, 0))
        row = self.result.row(source)
        if row is None:
            self.images.show_message(f"this trial has no {source_label(source)}")
            return
        self.images.show_images(self.session, row.decoded, self.session.trial)

    def _choose(self) -> None:
        """Make the combo's pattern the session's: at once when it is at hand, else after a worker has
        predicted every trial's repeat (the newest choice wins; a replaced bundle's result is dropped)."""
        session, source = self.session, self.choice.currentData()
        if not session.has_bundle or session.decoder is None or source is None:
            return
        if self.predicting is not None:
            self.predicting.quit()
            self.predicting = None
        if session.repeats.has(source):
            session.repeats.choose(source)
            return

        def progressed(step) -> None:
            done, total, what = step
            self.status.setText(f"{what}… {done / max(total, 1):.0%}")

        def predicted(result) -> None:
            self.predicting = None
            if result.repeat == self.choice.currentData():
                session.repeats.keep(result)

        def failed(exc: BaseException) -> None:
            self.predicting = None
            self.status.setText(f"cannot decode repeat {source}: {exc}")

        self.status.setText(f"predicting every trial's repeat {source}…")
        self.predicting = self.workers.start(iter_repeat_predictions, session.bundle, session.decoder, int(source),
                                             on_yielded=progressed, on_returned=predicted, on_error=failed)

    def _sync_choice(self) -> None:
        """Show the session's choice (a new bundle goes back to the mean) and what it decodes."""
        repeats = self.session.repeats
        index = self.choice.findData(repeats.source)
        if index >= 0 and index != self.choice.currentIndex():
            self.choice.blockSignals(True)
            self.choice.setCurrentIndex(index)
            self.choice.blockSignals(False)
            self._show_choice()
        fallbacks = repeats.fallbacks()
        self.status.setText(
            "" if repeats.repeat is None else
            f"The trial view, the trial table's ranks and “worst first” decode repeat {repeats.repeat}"
            + (f" ({fallbacks} trials have fewer repeats and use their last one)." if fallbacks else ".")
            + " Caption scores are the mean's and are hidden meanwhile.")

    @property
    def chosen(self) -> str | int:
        return self.choice.currentData()

