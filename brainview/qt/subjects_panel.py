"""The subjects panel: a study's subjects side by side (issue 16).

- a subject selector: choosing a subject opens its bundle in the window (the window's one-transaction
  switch), on the same stimulus, with the selection carried over through the surface;
- the current stimulus in every subject: stage-1 and stage-2 captions, image rank and text rank
  (a subject that did not see the stimulus says so);
- the ROI table across subjects (rows ROIs, columns subjects, as Table 3 of the MICCAI paper):
  checking an ROI decodes its synthetic pattern in every subject;
- each subject's summary (retrieval top-1, METEOR) and the mean ± sd across subjects, which "Export table…"
  (and File → Export table) saves as CSV: the same rows ``brainview table STUDY`` writes
  (:func:`brainview.analysis.tables.subjects_table`).

All decoding runs in workers (``QtWorkers``; the stimulus through a newest-wins ``QtLatestRunner``); results of
a study or stimulus no longer shown are dropped. The tables are filled by ``subjects_tables``.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from brainview.analysis.demo_study import (build_estimate, build_status, demo_study_builder, demo_study_state,
                                           expected_build_seconds, run_builder)
from brainview.analysis.study import Study, load_study
from brainview.analysis.tables import Table, subjects_table
from brainview.cortex.transfer import space_of, transfer_edits
from brainview.qt.subjects_tables import (NOT_SEEN, fill_roi_table, fill_stimulus_table, fill_summary_table, item,
                                          show_roi_row)
from brainview.qt.workers import QtLatestRunner, QtWorkers
from brainview.state.session import Session
from brainview.state.study import StudyDecoding

__all__ = ["NOT_SEEN", "QtSubjectsPanel"]


class QtSubjectsPanel(QWidget):
    """A study's subjects side by side; ``open_subject(path)`` asks the window to show a subject's bundle."""

    open_subject = Signal(str)
    error = Signal(str, str)
    message = Signal(str)
    study_changed = Signal()
    attention = Signal()  # something to show: a study opened
    export_changed = Signal()  # the summary table became exportable, or stopped being

    def __init__(self, session: Session, device=lambda: "auto", demo_bundle: Path | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        # its own single thread: decoding four subjects must never queue the window's bundle loading
        # behind it (Qt's global pool has one thread per core), and one at a time is all the models allow
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self.workers = QtWorkers(self, pool=self._pool)
        # stepping through trials: only the newest stimulus is decoded; one overtaken gives up its captions
        self.stimulus_runner = QtLatestRunner(self.workers, delay_ms=120, parent=self)
        self.stimulus_runner.partial.connect(self._stimulus_decoded)
        self.stimulus_runner.result.connect(self._stimulus_decoded)
        self.stimulus_runner.failed.connect(self._failed)
        self.device = device
        self.demo_bundle = demo_bundle
        self.study: Study | None = None
        self.decoding: StudyDecoding | None = None
        self._generation = 0  # a new study: results of older requests are dropped
        self._carry = None  # (subject id, edits, cortex, space, stimulus key) while a subject switch is on its way
        self._build = None
        self._roi_results: dict[str, dict] = {}
        self._offered = False
        self.summary_rows: Table | None = None  # the summary table shown (None: no study, or still computing)

        self.title = QLabel("No study open")
        self.title.setWordWrap(True)
        self.subject_combo = QComboBox(toolTip="Show this subject's bundle, on the same stimulus and selection")
        self.subject_combo.activated.connect(self._subject_chosen)
        self.open_button = QPushButton("Open study…", toolTip="A study.json or a folder of bundles")
        self.open_button.clicked.connect(self.choose_study)
        self.demo_button = QPushButton("Demo study", toolTip="The demo bundle as subj01 and three more virtual subjects")
        self.demo_button.clicked.connect(self.open_demo_study)
        self.export_button = QPushButton("Export table…")  # the window's exports connect it
        self.progress = QProgressBar(visible=False, textVisible=True)
        self.status = QLabel()
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Subject"))
        top.addWidget(self.subject_combo, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.demo_button)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)

        self.stimulus_table = QTableWidget(0, 4)
        self.stimulus_table.setHorizontalHeaderLabels(["subject", "image", "text", "stage-1 / stage-2 caption"])
        for col, tip in ((1, "rank of the true image among the test images, given the brain pattern"),
                         (2, "rank of the best true caption among all test captions (stage 2)")):
            self.stimulus_table.horizontalHeaderItem(col).setToolTip(tip)
        self.stimulus_box = self._boxed("This stimulus in every subject", self.stimulus_table)

        self.roi_table = QTableWidget(0, 0)
        self.roi_table.itemChanged.connect(self._roi_checked)
        self.roi_box = self._boxed("ROIs across subjects (check to decode in every subject)", self.roi_table)

        self.summary_table = QTableWidget(0, 4)
        self.summary_table.setHorizontalHeaderLabels(["subject", "image", "text", "METEOR"])
        for col, tip in ((1, "image_given_brain top-1"), (2, "text_given_brain top-1 (stage 2)"),
                         (3, "METEOR of the stage's captions against the references")):
            self.summary_table.horizontalHeaderItem(col).setToolTip(tip)
        self.summary_box = self._boxed("Summary (top-1, test split)", self.summary_table)

        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(top)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.stimulus_box, 3)
        layout.addWidget(self.roi_box, 4)
        layout.addWidget(self.summary_box, 2)
        for table in (self.stimulus_table, self.roi_table, self.summary_table):
            table.verticalHeader().setVisible(False)
            table.setWordWrap(True)
        self._set_enabled(False)
        self._show_export()

    @staticmethod
    def _boxed(title: str, widget: QWidget) -> QGroupBox:
        box = QGroupBox(title)
        QVBoxLayout(box).addWidget(widget)
        return box

    def _set_enabled(self, on: bool) -> None:
        for widget in (self.subject_combo, self.stimulus_box, self.roi_box, self.summary_box):
            widget.setEnabled(on)

    # ----------------------------------------------------------------- opening

    def choose_study(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a study", "", "Study (study.json *.json)")
        if path:
            self.open_study(path, show_first=True)

    def open_study(self, path: str | Path, show_first: bool = False) -> None:
        """Read and validate the study (every subject's bundle) in a worker, then show it; with
        ``show_first`` (or when the bundle on screen is not one of its subjects) open subject 1."""
        self._generation += 1
        generation = self._generation
        self.status.setText(f"Opening the study {path}…")

        def read():
            study = load_study(path)
            for s in study.ids:
                study.bundle(s)
            study.stimuli  # noqa: B018 - matched here, off the GUI thread
            return study

        def opened(study: Study) -> None:
            if generation == self._generation:
                self.set_study(study, show_first=show_first)

        def failed(exc: BaseException) -> None:
            if generation == self._generation:
                self.status.setText("")
                from brainview.qt.dialogs import error_text

                self.error.emit("Cannot open the study", error_text(exc))

        self.workers.start(read, on_returned=opened, on_error=failed)

    def set_study(self, study: Study, show_first: bool = False) -> None:
        if self.decoding is not None:
            self.decoding.cancel()
        self._generation += 1
        self.study = study
        self.decoding = StudyDecoding(study, device=self.device())
        self._roi_results = {}
        self.summary_rows = None
        self._show_export()
        match = study.stimuli
        self.title.setText(f"<b>{study.name}</b>: {len(study.ids)} subjects, {len(match.keys)} stimuli "
                           f"({len(match.shared())} seen by all), matched by {study.match!r}")
        self.subject_combo.blockSignals(True)
        self.subject_combo.clear()
        for s in study.ids:
            self.subject_combo.addItem(f"{s} ({study.bundle(s).n_trials} trials)", s)
        self.subject_combo.blockSignals(False)
        fill_roi_table(self.roi_table, study, self.decoding.roi_names())
        self._set_enabled(True)
        self.status.setText("")
        self.study_changed.emit()
        self.attention.emit()
        current = self.current_subject()
        if show_first or current is None:
            self.open_subject.emit(str(study.subject(study.ids[0]).path))
        else:
            self.bundle_shown()
        self._load_summaries()

    def open_demo_study(self) -> None:
        """The demo study: opened when built and current, else built first (one click, with progress)."""
        if self.demo_bundle is None:
            return
        state, file = demo_study_state(self.demo_bundle)
        if state == "ready":
            self.open_study(file, show_first=self.current_subject_in(file) is None)
            return
        command = demo_study_builder(self.demo_bundle, file.parent)
        if command is None:
            self.error.emit("Cannot build the demo study",
                            "The demo study is built by training/demo_world, which this installation lacks.")
            return
        self.build_demo_study(command, file)

    def current_subject_in(self, file: Path) -> str | None:
        try:
            return load_study(file).subject_of(self.session.bundle.path) if self.session.has_bundle else None
        except Exception:  # noqa: BLE001 - a broken study file is rebuilt
            return None

    def build_demo_study(self, command: list[str], file: Path) -> None:
        self.demo_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.setFormat("building the demo study…")
        self.progress.show()
        expected, _ = expected_build_seconds(file.parent)
        self.status.setText("Building three more virtual subjects from the demo bundle "
                            f"({build_estimate(file.parent)})…")

        def line(text: str) -> None:
            self.status.setText(build_status(text, expected))

        def done(_path) -> None:
            self._build = None
            self.progress.hide()
            self.demo_button.setEnabled(True)
            self.open_study(file, show_first=self.current_subject_in(file) is None)

        def failed(exc: BaseException) -> None:
            self._build = None
            self.progress.hide()
            self.demo_button.setEnabled(True)
            from brainview.qt.dialogs import error_text

            self.error.emit("Cannot build the demo study", error_text(exc))

        self._build = self.workers.start(run_builder, command, on_yielded=line, on_returned=done, on_error=failed)

    def offer_demo_study(self) -> None:
        """On start with the demo bundle: open the demo study when it is built, else say it is one click away."""
        if self.demo_bundle is None or self.study is not None:
            return
        state, file = demo_study_state(self.demo_bundle)
        if state == "ready":
            self.open_study(file)
        else:
            # the window offers it in its toolbar; the dock stays closed so the default layout keeps its room
            self.status.setText("The demo is a study of four virtual subjects: press “Demo study” to build the "
                                f"other three ({build_estimate(file.parent)}, once).")

    # ----------------------------------------------------------------- following the window

    def current_subject(self) -> str | None:
        if self.study is None or not self.session.has_bundle:
            return None
        return self.study.subject_of(self.session.bundle.path)

    def current_key(self) -> str | None:
        subject = self.current_subject()
        if subject is None:
            return None
        return self.study.stimuli.keys[self.study.stimuli.trial[subject].tolist().index(self.session.trial)]

    def _subject_chosen(self, index: int) -> None:
        target = self.subject_combo.itemData(index)
        current = self.current_subject()
        if target is None or target == current:
            return
        if current is not None and self.session.selection is not None:
            bundle = self.session.bundle
            self._carry = (target, self.session.selection.edits(), self.session.cortex, space_of(bundle),
                           self.current_key())
        self.open_subject.emit(str(self.study.subject(target).path))

    def bundle_shown(self) -> None:
        """The window shows a new bundle: follow it (selector, matched stimulus, carried selection)."""
        subject = self.current_subject()
        self._set_enabled(subject is not None)
        if subject is None:
            if self.study is None and not self._offered and self.demo_bundle is not None and self.session.has_bundle \
                    and self.session.bundle.path.resolve() == Path(self.demo_bundle).resolve():
                self._offered = True
                self.offer_demo_study()
            elif self.study is not None:
                self.status.setText("The bundle on screen is not a subject of this study.")
            return
        self.subject_combo.blockSignals(True)
        self.subject_combo.setCurrentIndex(self.study.ids.index(subject))
        self.subject_combo.blockSignals(False)
        carry, self._carry = self._carry, None
        if carry is not None and carry[0] == subject:
            _, edits, cortex, space, key = carry
            self._apply_carry(subject, edits, cortex, space, key)
        self.trial_changed()

    def _apply_carry(self, subject: str, edits: dict, cortex, space, key: str | None) -> None:
        notes = []
        if key is not None:
            trial = self.study.stimuli.trial_of(subject, key)
            if trial is None:
                notes.append(f"{subject} did not see stimulus {key}")
            else:
                self.session.set_trial(trial)
        if any(edits.get(k) for k in ("rois", "painted_vertices", "painted_voxels", "erased_vertices",
                                      "erased_voxels")):
            try:
                moved = transfer_edits(edits, cortex, space, self.session.cortex, space_of(self.session.bundle))
                self.session.selection.restore(**moved)
                notes.append(f"selection carried over: {len(self.session.selection.voxels())} voxels of {subject}")
            except Exception as exc:  # noqa: BLE001 - the switch stands; the selection stays empty, with the reason
                from brainview.qt.dialogs import error_text

                notes.append(f"the selection was not carried over: {error_text(exc)}")
        if notes:
            self.message.emit("; ".join(notes))

    def trial_changed(self) -> None:
        """Decode the current stimulus in every subject (newest wins; captions follow the ranks)."""
        key = self.current_key()
        if key is None:
            return
        self._show_stimulus(key, None)
        decoding = self.decoding

        def work(superseded):
            yield decoding, key, decoding.stimulus(key, captions=False)
            if not superseded():  # a newer stimulus came: its ranks first, not these captions
                return decoding, key, decoding.stimulus(key, captions=True)
            return None

        self.stimulus_runner.submit_steps(work)

    def _stimulus_decoded(self, result) -> None:
        decoding, key, rows = result
        if decoding is self.decoding and key == self.current_key():
            self._show_stimulus(key, rows)

    def _show_stimulus(self, key: str, result: dict | None) -> None:
        self.stimulus_box.setTitle(f"Stimulus {key} in every subject")
        fill_stimulus_table(self.stimulus_table, self.study, key, result, self.current_subject())

    def _show_summaries(self, summaries: dict) -> None:
        self.summary_rows = subjects_table(summaries)
        self.summary_box.setTitle(fill_summary_table(self.summary_table, self.summary_rows))
        self._show_export()

    def export_unavailable(self) -> str | None:
        """Why the summary table cannot be exported now (None: it can)."""
        if self.study is None:
            return "No study is open: open a study (or the demo study) first."
        if self.summary_rows is None:
            return "The summary is still being computed."
        return None

    def _show_export(self) -> None:
        why = self.export_unavailable()
        self.export_button.setEnabled(why is None)
        self.export_button.setToolTip(why or "Save the summary (each subject's top-1 and METEOR, the mean ± sd, "
                                              "the chance level) as CSV")
        self.export_changed.emit()

    def _failed(self, exc: BaseException) -> None:
        from brainview.errors import Cancelled
        from brainview.qt.dialogs import error_text

        if not isinstance(exc, Cancelled):
            self.status.setText(f"Decoding failed: {error_text(exc)}")

    # ----------------------------------------------------------------- the ROI table

    def roi_row(self, name: str) -> int:
        return self.decoding.roi_names().index(name)

    def check_roi(self, name: str, checked: bool = True) -> None:
        """Check (or uncheck) an ROI row, as a click does."""
        self.roi_table.item(self.roi_row(name), 0).setCheckState(Qt.Checked if checked else Qt.Unchecked)

    def _roi_checked(self, item: QTableWidgetItem) -> None:
        if item.column() != 0 or self.decoding is None:
            return
        name = item.text()
        if item.checkState() != Qt.Checked:
            self._roi_results.pop(name, None)
            self._show_roi(name, None)
            return
        stage = self.session.synthetic.stage if self.session.has_bundle else "stage2"
        decoding = self.decoding  # ROI captions do not depend on the stimulus: only a new study drops them
        for s in self.study.ids:
            self.roi_table.item(item.row(), 1 + self.study.ids.index(s)).setText("decoding…")

        def work():
            out = {}
            for s in decoding.study.ids:
                out[s] = decoding.roi_captions(s, [name], stage).get(name)
                yield dict(out)
            return out

        def shown(result) -> None:
            if decoding is self.decoding and self.roi_table.item(item.row(), 0).checkState() == Qt.Checked:
                self._roi_results[name] = result
                self._show_roi(name, result)

        self.workers.start(work, on_yielded=shown, on_returned=shown, on_error=self._failed)

    def _show_roi(self, name: str, result: dict | None) -> None:
        show_roi_row(self.roi_table, self.study, self.roi_row(name), name, result)

    def roi_caption(self, name: str, subject: str) -> str:
        """What the ROI table shows for ``name`` in ``subject`` (tests, screenshots)."""
        return self.roi_table.item(self.roi_row(name), 1 + self.study.ids.index(subject)).text()

    # ----------------------------------------------------------------- summary

    def _load_summaries(self) -> None:
        decoding = self.decoding

        def work():
            return decoding.summaries("stage2")

        def shown(result) -> None:
            if decoding is self.decoding:
                self._show_summaries(result)

        table = self.summary_table
        table.setRowCount(len(decoding.study.ids))
        for row, s in enumerate(decoding.study.ids):
            table.setItem(row, 0, item(s))
            for col in (1, 2, 3):
                table.setItem(row, col, item("…"))
        self.workers.start(work, on_returned=shown, on_error=self._failed)

    def show_now(self, rois: tuple[str, ...] = ()) -> None:
        """Decode the current stimulus, the ``rois`` and the summaries on this thread (screenshots, tests)."""
        key = self.current_key()
        if key is not None:
            self._show_stimulus(key, self.decoding.stimulus(key))
        stage = self.session.synthetic.stage if self.session.has_bundle else "stage2"
        for name in rois:
            self.roi_table.blockSignals(True)
            self.roi_table.item(self.roi_row(name), 0).setCheckState(Qt.Checked)
            self.roi_table.blockSignals(False)
            self._roi_results[name] = {s: self.decoding.roi_captions(s, [name], stage).get(name) for s in self.study.ids}
            self._show_roi(name, self._roi_results[name])
        self._show_summaries(self.decoding.summaries("stage2"))

    def shutdown(self, msecs: int = 30000) -> None:
        """Stop decoding (within a token) and the study build, and wait up to ``msecs`` for the panel's thread."""
        self.stimulus_runner.cancel()
        if self.decoding is not None:
            self.decoding.cancel()
        if self._build is not None:
            self._build.quit()
        self.workers.shutdown(msecs)
