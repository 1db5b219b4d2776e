"""What the user takes out of the app: tables as CSV (File menu and right-click on the tables; a study's
subjects table also from the Subjects panel's "Export table…") and figures (File → Export figure…). The main
window adds :class:`QtExports`'s actions to its menu.

Tables come from :mod:`brainview.analysis.tables`, figures from :mod:`brainview.qt.figure_export`; the ROI
table captions every ROI, which runs in a worker. The trial table and the trial figure need every
trial's image rank: before the window's prediction worker has them, they wait for it
(:meth:`QtExports.when_ranked`) instead of running that whole-dataset pass on the GUI thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from brainview.analysis import tables
from brainview.qt import dialogs


def choose_csv(parent: QWidget, title: str, name: str) -> str:
    path, _ = QFileDialog.getSaveFileName(parent, title, name, "CSV table (*.csv)")
    if path and not path.lower().endswith(".csv"):
        path += ".csv"
    return path


class QtExports(QObject):
    """Table and figure exports of one main window."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.trials_action = QAction("Trial table as CSV…", self)
        self.trials_action.triggered.connect(lambda: self.save_trials(choose_csv(window, "Save the trial table",
                                                                                 "trials.csv")))
        self.rois_action = QAction("ROI table as CSV…", self)
        self.rois_action.triggered.connect(lambda: self.save_rois(choose_csv(window, "Save the ROI table", "rois.csv")))
        self.retrieval_action = QAction("Retrieval results as CSV…", self)
        self.retrieval_action.triggered.connect(
            lambda: self.save_retrieval(choose_csv(window, "Save the retrieval results", "retrieval.csv")))
        self.synthetic_action = QAction("Synthetic retrieval results as CSV…", self)
        self.synthetic_action.triggered.connect(
            lambda: self.save_retrieval(choose_csv(window, "Save the synthetic pattern's retrievals",
                                                   "synthetic-retrieval.csv"), synthetic=True))
        self.subjects_action = QAction("Subjects table (Table 3 across subjects) as CSV…", self)
        self.subjects_action.triggered.connect(lambda: self.save_subjects(choose_csv(
            window, "Save the subjects table", f"{window.subjects_panel.study.name}-subjects.csv")))
        panel = window.subjects_panel
        panel.export_button.clicked.connect(self.subjects_action.trigger)
        panel.export_changed.connect(self._subjects_available)
        self._subjects_available()
        self.figure_action = QAction("Export &figure…", self)
        self.figure_action.triggered.connect(self.figure_dialog)
        self._context_menu(window.browser.table, [self.trials_action])
        self._context_menu(window.trial_view.trial_texts, [self.retrieval_action])
        self._context_menu(window.trial_view.synthetic_texts, [self.synthetic_action])
        self._context_menu(window.roi_panel.tree, [self.rois_action])
        self._context_menu(panel.summary_table, [self.subjects_action])

    def add_to(self, menu: QMenu) -> None:
        menu.addAction(self.figure_action)
        tables_menu = menu.addMenu("Export &table")
        tables_menu.addActions([self.trials_action, self.rois_action, self.retrieval_action, self.synthetic_action,
                                self.subjects_action])
        tables_menu.setToolTipsVisible(True)  # a disabled action says why

    @staticmethod
    def _context_menu(widget: QWidget, actions: list[QAction]) -> None:
        widget.setContextMenuPolicy(Qt.ActionsContextMenu)
        widget.addActions(actions)

    def _ready(self) -> bool:
        if not self.session.has_bundle:
            dialogs.show_notice(self.window, "Nothing to export", "Open a bundle first.")
            return False
        return True

    def _write(self, path: str, table) -> Path | None:
        try:
            written = tables.write_csv(path, table)
        except OSError as exc:
            dialogs.show_error(self.window, "Cannot save the table", f"{path}: {exc}")
            return None
        self.window.statusBar().showMessage(f"Saved {written}", 5000)
        return written

    def when_ranked(self, then) -> None:
        """Call ``then()`` on the GUI thread once every trial's image rank is in: now, or when the
        window's prediction worker (started if none runs; its progress shows in the status bar)
        delivers them. Dropped if another bundle is shown first."""
        session, bundle = self.session, self.session.bundle
        if session.ranks_ready:
            then()
            return

        def scored(_session) -> None:
            if session.bundle is not bundle or session.ranks_ready:
                session.disconnect("scores", scored)
                if session.bundle is bundle:
                    then()

        session.connect("scores", scored)
        self.window.statusBar().showMessage("Every trial's rank is needed first: predicting them…")
        self.window.passes.predict_all()

    # ----------------------------------------------------------------- tables

    def save_trials(self, path: str, on_saved=None) -> None:
        """The trial table as the browser has it now (captions and scores made so far), once every
        trial's rank is in; the text ranks (every trial against every caption) are computed in a worker."""
        if not path or not self._ready():
            return
        self.when_ranked(lambda: self._save_trials(path, on_saved))

    def _save_trials(self, path: str, on_saved) -> None:
        session, bundle = self.session, self.session.bundle

        def done(ranks) -> None:
            if session.bundle is not bundle:
                return
            written = self._write(path, tables.trial_table(session, text_rank=ranks))
            if on_saved is not None:
                on_saved(written)

        self.window.statusBar().showMessage("Ranking every trial's captions for the table…")
        self.window.workers.start(lambda: {stage: tables.text_ranks(session, stage) for stage in session.stages},
                                  on_returned=done, on_error=self.window.worker_failed)

    def _subjects_available(self) -> None:
        why = self.window.subjects_panel.export_unavailable()
        self.subjects_action.setEnabled(why is None)
        self.subjects_action.setToolTip(why or self.subjects_action.text())

    def save_subjects(self, path: str) -> Path | None:
        """The Subjects panel's summary as it shows it (``brainview table STUDY`` writes the same rows)."""
        rows = self.window.subjects_panel.summary_rows
        if not path or rows is None:
            return None
        return self._write(path, rows)

    def save_retrieval(self, path: str, synthetic: bool = False) -> Path | None:
        """The current trial's top-k retrievals, or the synthetic pattern's."""
        if not path or not self._ready():
            return None
        session = self.session
        if synthetic:
            result = self.window.trial_view.synthetic
            if result is None:
                dialogs.show_notice(self.window, "No synthetic pattern", "Select or paint a region first.")
                return None
            return self._write(path, tables.retrieval_table(session, result.decoded, result.trial))
        return self._write(path, tables.retrieval_table(session, session.retrieve(), session.trial))

    def save_rois(self, path: str, on_saved=None) -> None:
        """The ROI table; with the language models, each ROI's synthetic caption (made in a worker)."""
        if not path or not self._ready():
            return
        session = self.session
        bundle, stage = session.bundle, session.synthetic.stage
        if not session.can_caption:
            written = self._write(path, tables.roi_table(bundle))
            if on_saved is not None:
                on_saved(written)
            return

        def caption_rois():
            with session.model_lock:
                return tables.roi_captions(bundle, session.decoder, stage, scale=session.synthetic.scale)

        def done(captions) -> None:
            written = self._write(path, tables.roi_table(bundle, {stage: captions}))
            if on_saved is not None:
                on_saved(written)

        self.window.statusBar().showMessage("Captioning every ROI for the table…")
        self.window.workers.start(caption_rois, on_returned=done, on_error=self.window.worker_failed)

    # ----------------------------------------------------------------- figures

    def figure_dialog(self) -> None:
        from brainview.qt.figure_export import QtFigureDialog, choose_figure_path

        view = self.window.cortex_view
        if not self._ready() or view is None:
            return
        ratio = view.devicePixelRatioF()
        dialog = QtFigureDialog((int(view.width() * ratio), int(view.height() * ratio)), self.window)
        if dialog.exec() != QtFigureDialog.Accepted:
            return
        path = choose_figure_path(self.window, "trial-panel.png" if dialog.what.currentData() == "trial"
                                  else "cortex.png")
        if path:
            self.export_figure(path, *dialog.size_px, what=dialog.what.currentData(),
                               transparent=dialog.transparent.isChecked(), selection=dialog.selection.isChecked())

    def export_figure(self, path: str, width: int, height: int, what: str = "cortex", transparent: bool = False,
                      selection: bool = False, on_saved=None) -> Path | None:
        """Save the cortex as it is shown (surface, camera, overlay and its colour range, outlines) or the
        trial panel, at ``width`` × ``height`` pixels. Returns the file when saved at once; the trial
        panel (it shows the true image's rank) waits for every trial's rank, then calls ``on_saved``."""
        if what == "trial" and not self.session.ranks_ready:
            self.when_ranked(lambda: self.export_figure(path, width, height, what, transparent, selection, on_saved))
            return None
        written = self._export_figure(path, width, height, what, transparent, selection)
        if on_saved is not None and written is not None:
            on_saved(written)
        return written

    def _export_figure(self, path: str, width: int, height: int, what: str, transparent: bool,
                       selection: bool) -> Path | None:
        from brainview.analysis.figures import save_trial_figure
        from brainview.errors import UserError
        from brainview.qt.figure_export import export_cortex_figure

        try:
            if what == "trial":
                written = save_trial_figure(path, self.session, width, height, k=self.session.k,
                                            transparent=transparent)
            else:
                written = export_cortex_figure(self.window.cortex_view, path, width, height,
                                               overlay_label=self.window.cortex_shows.current().label,
                                               transparent=transparent, selection=selection)
        except (UserError, OSError) as exc:
            dialogs.show_error(self.window, "Cannot export the figure", str(exc))
            return None
        self.window.statusBar().showMessage(f"Saved {written} ({width}×{height})", 5000)
        return written
