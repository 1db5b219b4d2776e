"""Other models' captions in the trial view: one caption box per model for the current trial (with its
score and what its file misses), the "A minus B" chooser that sorts the trial table, and File → Add
model captions…. The Qt-free part is :class:`brainview.state.other_models.OtherModels`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QInputDialog, QLabel, QMessageBox,
                               QPushButton, QVBoxLayout, QWidget)

from brainview.analysis.model_captions import carried_specs, parse_spec
from brainview.errors import UserError
from brainview.qt import dialogs
from brainview.qt.trial_view import QtCaptionBox, section_title
from brainview.qt.workers import QtWorkers
from brainview.state.other_models import MODEL_SCORE

MODEL_COLOURS = ("#8fd18f", "#d99be0", "#e8c872", "#7fd4d4", "#e89090")


class QtOtherModels(QWidget):
    """The current trial's caption from every added model, and the pair the trial table sorts by."""

    sort_requested = Signal()  # "sort the trial table by A minus B"

    def __init__(self, session, workers: QtWorkers, parent=None):
        super().__init__(parent)
        self.session = session
        self.models = session.other_models
        self.workers = workers
        self.boxes: dict[str, QtCaptionBox] = {}
        self.grid = QGridLayout()
        self.problems = QLabel(wordWrap=True)
        self.problems.setObjectName("note")
        self.problems.hide()
        self.first, self.second = QComboBox(), QComboBox()
        self.sort_button = QPushButton("Sort trials by A − B", toolTip="largest difference first: where A beats B most")
        self.sort_button.clicked.connect(self._sort)
        pair = QHBoxLayout()
        for widget in (QLabel("A"), self.first, QLabel("minus B"), self.second, self.sort_button):
            pair.addWidget(widget)
        pair.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(section_title("Other models"))
        layout.addLayout(self.grid)
        layout.addWidget(self.problems)
        layout.addLayout(pair)
        self.models.connect("models", lambda m: self._rebuild())
        session.connect("trial", lambda s: self.refresh())
        session.connect("bundle", lambda s: self._add_carried())
        self._rebuild()

    def _rebuild(self) -> None:
        for box in self.boxes.values():
            box.deleteLater()
        self.boxes = {}
        for i, name in enumerate(self.models.names):
            box = QtCaptionBox(name, MODEL_COLOURS[i % len(MODEL_COLOURS)])
            self.boxes[name] = box
            self.grid.addWidget(box, i // 3, i % 3)
            self.grid.setColumnStretch(i % 3, 1)
        for combo in (self.first, self.second):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(self.models.names)
            combo.blockSignals(False)
        if self.models.pair:
            self.first.setCurrentText(self.models.pair[0])
            self.second.setCurrentText(self.models.pair[1])
        problems = [p for m in self.models.models for p in m.problems()]
        self.problems.setText("\n".join(problems))
        self.problems.setVisible(bool(problems))
        self.setVisible(bool(self.models.models))
        self.sort_button.setEnabled(len(self.models.names) >= 2)
        self.refresh()

    def refresh(self) -> None:
        if not self.session.has_bundle:
            return
        trial = self.session.trial
        for name, box in self.boxes.items():
            box.set_text(self.models.caption(name, trial), "(no caption for this trial in the file)")
            score = self.models.score(name, trial)
            why = self.models.missing.get(name)
            box.subtitle.setText(f"{MODEL_SCORE} {score:.3f}" if score is not None else (why or "scoring…"))
            box.subtitle.show()

    def _sort(self) -> None:
        try:
            self.models.set_pair(self.first.currentText(), self.second.currentText())
        except UserError as exc:
            QMessageBox.warning(self, "Sort by A − B", str(exc))
            return
        self.sort_requested.emit()

    def add_file(self, name: str, path: str) -> None:
        """Match a file to the open bundle's trials and score it in a worker; bad input raises UserError."""
        self.models.add(name, path)
        self.workers.start(self.models.compute_scores, name, on_returned=self.models.set_scores,
                           on_error=lambda exc: self.models.set_scores((name, None, str(exc))))

    def _add_carried(self) -> None:
        """The caption files the opened bundle carries in ``models/``."""
        for spec in carried_specs(self.session.bundle.path):
            try:
                self.add_file(*parse_spec(spec))
            except UserError as exc:
                dialogs.show_error(self.window(), "The bundle's model captions", str(exc))

    def add_when_opened(self, specs: list[str]) -> None:
        """``brainview open BUNDLE --captions NAME=FILE``: add the files once the bundle is open."""
        def opened(session) -> None:
            session.disconnect("bundle", opened)
            for spec in specs:
                try:
                    self.add_file(*parse_spec(spec))
                except UserError as exc:
                    QMessageBox.warning(self.window(), "Model captions", str(exc))

        self.session.connect("bundle", opened)

    def add_now(self, specs: list[str]) -> None:
        """Add and score the files on this thread (the screenshot command, tests)."""
        for spec in specs:
            name, path = parse_spec(spec)
            self.models.add(name, path)
            self.models.set_scores(self.models.compute_scores(name))

    def choose_file(self) -> None:
        """File → Add model captions…: a file, then the model's name."""
        path, _ = QFileDialog.getOpenFileName(self.window(), "Add model captions", "",
                                              "Captions (*.json *.csv *.txt);;All files (*)")
        if not path:
            return
        name, ok = QInputDialog.getText(self.window(), "Add model captions", "Model name:", text=Path(path).stem)
        if not ok or not name.strip():
            return
        try:
            self.add_file(name.strip(), path)
        except UserError as exc:
            QMessageBox.warning(self.window(), "Add model captions", str(exc))
