"""Ask the brain in language: phrase search, zero-shot labels and concept maps, one tab each.

The panel reads and changes ``session.language`` (:class:`~brainview.state.language.LanguageTools`);
everything slow runs in workers: the text encoder loads on the first query (and the trials are
projected with it), a search runs when typing stops (debounced, newest wins), zero-shot labels
and concept maps run when asked. The search fills the trial browser's match columns through the
session; the concept map reaches the cortex and the selection through the main window
(:attr:`show_map`, :attr:`select_voxels`).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QScrollArea, QTabWidget, QVBoxLayout, QWidget)

from brainview.decoding.language import DEFAULT_LESION, DEFAULT_TEMPLATE
from brainview.errors import Cancelled, UserError
from brainview.qt import dialogs
from brainview.qt.language_plots import (BRAIN_COLOUR, IMAGE_COLOUR, QtConfusionPlot, QtMatchThumbnail, QtRankPlot,
                                         QtRoiBars, warning_html)
from brainview.qt.thumbnails import stimulus_thumbnail
from brainview.qt.trial_view import section_title
from brainview.qt.workers import QtLatestRunner, QtWorkers
from brainview.state.language import NOT_LOADED, LanguageTools
from brainview.state.session import Session

N_MATCHES = 8
THUMB_COLUMNS = 4
SEARCH_DELAY_MS = 350
ENSEMBLE_TIP = "A phrase, or a prompt ensemble NAME=PROMPT1;PROMPT2 (their embeddings averaged, CLIP's ensembling)"


class QtLanguagePanel(QWidget):
    """Phrase search, zero-shot labels and concept maps of the current bundle."""

    show_map = Signal()  # a concept map arrived and should be shown on the cortex
    select_voxels = Signal(object)  # voxel ids to make the selection
    sort_by_match = Signal()  # sort the trial browser by the phrase's brain score, best first
    error = Signal(str, str)
    search_done = Signal()  # a search result (or its failure) is shown

    def __init__(self, session: Session, workers: QtWorkers, device: Callable[[], str] = lambda: "auto",
                 parent=None):
        super().__init__(parent)
        self.session = session
        self.tools: LanguageTools = session.language
        self.workers = workers
        self.device = device
        self.search_runner = QtLatestRunner(workers, delay_ms=SEARCH_DELAY_MS, parent=self)
        self.search_runner.result.connect(self._search_returned)
        self.search_runner.failed.connect(self._search_failed)
        self._preparing = False
        self._waiting: Callable | None = None

        self.status = QLabel(wordWrap=True)
        self.status.setObjectName("muted")
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_search(), "Search")
        self.tabs.addTab(self._build_zero_shot(), "Zero-shot")
        self.tabs.addTab(self._build_concept(), "Concept map")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)

        self.tools.connect("ready", lambda t: self._show_state())
        self.tools.connect("search", lambda t: self._show_search())
        self.tools.connect("zero_shot", lambda t: self._show_zero_shot())
        self.tools.connect("concept", lambda t: self._show_concept())
        session.connect("bundle", lambda s: self._on_bundle())
        session.connect("trial", lambda s: self._show_trial_labels())
        self._show_state()
        for show in (self._show_search, self._show_zero_shot, self._show_concept):
            show()  # the plots say why they are empty (no bundle open)

    # ----------------------------------------------------------------- building

    def _build_search(self) -> QWidget:
        self.search_edit = QLineEdit(placeholderText="find trials whose brain matches …", clearButtonEnabled=True,
                                     toolTip=ENSEMBLE_TIP)
        self.search_edit.textChanged.connect(self._search_text_changed)
        self.best_button = QPushButton("Best first", toolTip="Sort the trial table by the phrase's brain score")
        self.best_button.clicked.connect(self.sort_by_match.emit)
        row = QHBoxLayout()
        row.addWidget(self.search_edit, 1)
        row.addWidget(self.best_button)
        self.search_summary = QLabel(wordWrap=True)
        self.search_summary.setObjectName("muted")
        grid_widget = QWidget()
        grid = QGridLayout(grid_widget)
        grid.setContentsMargins(0, 0, 0, 0)
        self.match_thumbnails = []
        for i in range(N_MATCHES):
            thumb = QtMatchThumbnail()
            thumb.clicked.connect(self.session.set_trial)
            thumb.hide()
            grid.addWidget(thumb, i // THUMB_COLUMNS, i % THUMB_COLUMNS)
            self.match_thumbnails.append(thumb)
        self.search_plot = QtRankPlot()
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addLayout(row)
        layout.addWidget(self.search_summary)
        layout.addWidget(section_title("Top matches (brain)"))
        layout.addWidget(grid_widget)
        layout.addWidget(self.search_plot, 1)
        return page

    def _build_zero_shot(self) -> QWidget:
        self.labels_edit = QLineEdit(placeholderText="labels: face, person, sign … (NAME=PROMPT1;PROMPT2 ensembles)")
        self.template_edit = QLineEdit(DEFAULT_TEMPLATE, toolTip="Prompt for a label without its own prompts; "
                                                                 "{} is the label (CLIP's default)")
        self.truth_combo = QComboBox(toolTip="Field of test/trials.json holding the true label")
        self.truth_combo.currentIndexChanged.connect(self._truth_chosen)
        self.fill_button = QPushButton("Labels from field", toolTip="Use the field's distinct values as the labels")
        self.fill_button.clicked.connect(self.labels_from_field)
        self.prompts_combo = QComboBox(toolTip="Prompts of each label from the finer field's values it covers "
                                               "(CLIP's prompt ensembling: place = a photo of a barn; … of a couch; …)")
        self.classify_button = QPushButton("Classify")
        self.classify_button.clicked.connect(self.classify)
        self.labels_edit.returnPressed.connect(self.classify)
        form = QFormLayout()
        form.addRow("Labels", self.labels_edit)
        form.addRow("Template", self.template_edit)
        truth_row = QHBoxLayout()
        truth_row.addWidget(self.truth_combo, 1)
        truth_row.addWidget(self.fill_button)
        form.addRow("Truth", truth_row)
        form.addRow("Prompts", self.prompts_combo)
        self.accuracy_label = QLabel(wordWrap=True, textInteractionFlags=Qt.TextSelectableByMouse)
        self.trial_labels = QLabel(wordWrap=True)
        self.trial_labels.setObjectName("muted")
        self.confusion_plot = QtConfusionPlot()
        self.confusion_image = self.confusion_plot.image
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addLayout(form)
        layout.addWidget(self.classify_button)
        layout.addWidget(self.accuracy_label)
        layout.addWidget(self.trial_labels)
        layout.addWidget(self.confusion_plot, 1)
        return page

    def _build_concept(self) -> QWidget:
        self.concept_edit = QLineEdit(placeholderText="a phrase to map onto the cortex …", toolTip=ENSEMBLE_TIP)
        self.concept_edit.returnPressed.connect(self.localize)
        self.versus_edit = QLineEdit(placeholderText="optional: alternatives, comma-separated",
                                     toolTip="With alternatives the map is of the phrase's zero-shot probability "
                                             "against them: where the decoder tells the phrase from them")
        self.versus_edit.returnPressed.connect(self.localize)
        self.label_combo = QComboBox(enabled=False, toolTip="Map one of the zero-shot tab's labels (with its prompts) "
                                                            "against the others: where the decoder tells it from them")
        self.label_combo.activated.connect(self._label_chosen)
        for combo in (self.label_combo, self.prompts_combo):  # long items must not widen the left column
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        self.map_combo = QComboBox()
        self.map_combo.addItem("all test trials (covariance, Haufe)", "all")
        self.map_combo.addItem("this trial (gradient × input)", "trial")
        self.lesion_spin = QDoubleSpinBox(minimum=0.1, maximum=100.0, decimals=1, singleStep=1.0,
                                          value=DEFAULT_LESION * 100, suffix=" %",
                                          toolTip="Share of voxels, the map's top ones, that the lesion check silences")
        self.localize_button = QPushButton("Map")
        self.localize_button.clicked.connect(self.localize)
        self.on_cortex = QCheckBox("On cortex", checked=True, toolTip="Show each new map on the cortex")
        self.on_cortex.toggled.connect(lambda on: on and self.tools.concept is not None and self.show_map.emit())
        self.select_button = QPushButton("Select top", enabled=False,
                                         toolTip="Make the map's top voxels the selection, decoded live")
        self.select_button.clicked.connect(self._select_top)
        form = QFormLayout()
        form.addRow("Phrase", self.concept_edit)
        form.addRow("Against", self.versus_edit)
        form.addRow("Label", self.label_combo)
        form.addRow("Map over", self.map_combo)
        form.addRow("Lesion", self.lesion_spin)
        buttons = QHBoxLayout()
        buttons.addWidget(self.localize_button)
        buttons.addWidget(self.select_button)
        buttons.addWidget(self.on_cortex)
        self.roi_plot = QtRoiBars()
        self.lesion_label = QLabel(wordWrap=True, textInteractionFlags=Qt.TextSelectableByMouse)
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(section_title("Map mean per ROI"))
        layout.addWidget(self.roi_plot)
        layout.addWidget(section_title("Lesion check"))
        layout.addWidget(self.lesion_label)
        layout.addStretch(1)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(page)
        return scroll

    # ----------------------------------------------------------------- state

    def _on_bundle(self) -> None:
        self.search_runner.cancel()
        self._waiting = None
        self.truth_combo.blockSignals(True)
        self.truth_combo.clear()
        self.truth_combo.addItem("(none)", None)
        for name in self.tools.truth_fields():
            self.truth_combo.addItem(name, name)
        self.truth_combo.blockSignals(False)
        self._truth_chosen()
        self._show_state()

    def _show_state(self) -> None:
        tools = self.tools
        usable = self.session.has_bundle and (tools.ready or tools.reason == NOT_LOADED)
        self.tabs.setEnabled(usable)
        if tools.ready:
            self.status.setText("Stage-2 brain↔text space, the retrieval model's text encoder.")
        elif self._preparing:
            self.status.setText("Loading the text encoder and projecting the trials…")
        elif tools.reason == NOT_LOADED:
            self.status.setText("The retrieval model's text encoder loads on the first query.")
        else:
            self.status.setText(f"Language queries are off: {tools.reason}.")
        reason = "" if usable else tools.reason or ""
        for widget in (self.search_edit, self.labels_edit, self.concept_edit):
            widget.setToolTip(reason)

    def _why_empty(self) -> str | None:
        """Why the plots have nothing to show beyond "no query yet": no bundle, or queries are off."""
        reason = self.tools.reason
        return None if reason in (None, NOT_LOADED) else reason

    def _with_probe(self, action: Callable) -> None:
        """Run ``action(probe)`` now, or once the text encoder has loaded (in a worker)."""
        tools = self.tools
        if tools.ready:
            action(tools.probe)
            return
        if not tools.can_prepare:
            self._show_state()
            return
        self._waiting = action
        if self._preparing:
            return
        self._preparing = True
        self._show_state()
        bundle = self.session.bundle

        def prepared(probe) -> None:
            self._preparing = False
            tools.set_probe(probe)
            waiting, self._waiting = self._waiting, None
            if waiting is not None:
                self._with_probe(waiting)  # the probe's, or (a newer bundle) the next load's
            self._show_state()

        def failed(exc: BaseException) -> None:
            self._preparing = False
            self._waiting = None
            if not isinstance(exc, Cancelled):  # a cancelled load is tried again on the next use
                tools.set_failed(bundle, dialogs.error_text(exc))
            self._show_state()

        self.workers.start(tools.prepare, bundle, self.device(), on_returned=prepared, on_error=failed)

    # ----------------------------------------------------------------- search

    def _search_text_changed(self, text: str) -> None:
        if not text.strip():
            self.search_runner.cancel()
            self.tools.set_search(self.tools.probe, None)
            self.search_summary.setText("")
            return
        self._with_probe(lambda probe: self.search_runner.submit(
            _search_job, self.tools, probe, self.search_edit.text()))

    def _search_returned(self, value) -> None:
        probe, result = value
        self.tools.set_search(probe, result)
        self.search_done.emit()

    def _search_failed(self, exc: BaseException) -> None:
        self.search_summary.setText(dialogs.error_text(exc))
        self.search_done.emit()

    def _show_search(self) -> None:
        result = self.tools.search
        self.search_plot.show_result(result, self._why_empty())
        if result is None:
            for thumb in self.match_thumbnails:
                thumb.hide()
            return
        session = self.session
        ensemble = f" (mean of {len(result.query.prompts)} prompts)" if len(result.query.prompts) > 1 else ""
        self.search_summary.setText(
            f"“{result.phrase}”{ensemble} · brain vs true image tokens: Spearman ρ {result.agreement:.2f}, "
            f"top-{N_MATCHES} overlap {result.overlap(N_MATCHES):.2f}"
            + warning_html(self.tools.probe.vocabulary_warning(result.unknown) if self.tools.probe else None))
        for rank, (thumb, trial) in enumerate(zip(self.match_thumbnails, result.order), start=1):
            trial = int(trial)
            thumb.trial = trial
            thumb.show_candidate(stimulus_thumbnail(session, trial), rank, float(result.brain[trial]), False,
                                 f"trial {session.trial_id(trial)}\n{session.references(trial)[0]}\n"
                                 f"true image tokens: {result.image[trial]:.3f}")
            thumb.show()

    # ----------------------------------------------------------------- zero-shot

    def _truth_chosen(self) -> None:
        from brainview.decoding.language import refining_fields

        field = self.truth_combo.currentData()
        self.fill_button.setEnabled(field is not None)
        self.prompts_combo.clear()
        self.prompts_combo.addItem("the label (template)", None)
        if field is not None and self.session.has_bundle:
            for finer in refining_fields(self.session.bundle.trials, field):
                self.prompts_combo.addItem(f"{finer} (averaged)", finer)

    def labels_from_field(self) -> None:
        from brainview.decoding.language import field_labels

        field = self.truth_combo.currentData()
        if field is None or not self.session.has_bundle:
            return
        try:
            labels = field_labels(self.session.bundle.trials, field, self.prompts_combo.currentData(),
                                  self.template_edit.text() or DEFAULT_TEMPLATE)
        except UserError as exc:
            self.error.emit("Labels from field", str(exc))
            return
        self.labels_edit.setText(", ".join(labels))

    def classify(self) -> None:
        labels = self.labels_edit.text().split(",")
        template = self.template_edit.text() or DEFAULT_TEMPLATE
        truth = self.truth_combo.currentData()
        self.accuracy_label.setText("classifying…")

        def run(probe) -> None:
            self.workers.start(self.tools.run_classify, probe, labels, template, truth,
                               on_returned=lambda result: self.tools.set_zero_shot(probe, result),
                               on_error=lambda exc: self._failed("Zero-shot labels", exc, self.accuracy_label))
        self._with_probe(run)

    def _failed(self, title: str, exc: BaseException, label: QLabel) -> None:
        label.setText("")
        if isinstance(exc, Cancelled):  # stopped on purpose (another bundle, closing): not an error
            return
        self.error.emit(title, dialogs.error_text(exc))

    def _show_zero_shot(self) -> None:
        result = self.tools.zero_shot
        self._fill_label_combo(result)
        if result is None:
            self.confusion_plot.show_confusion(None, None, self._why_empty())
            self.accuracy_label.setText("")
            self.trial_labels.setText("")
            return
        acc, image = result.accuracy, result.image_accuracy
        names = result.names
        probe = self.tools.probe
        warnings = "".join(warning_html(f"label {name}: {probe.vocabulary_warning(unknown)}")
                           for name, unknown in result.unknown.items()) if probe else ""
        if acc is None:
            self.accuracy_label.setText(f"{len(names)} labels; choose a truth field for accuracy.{warnings}")
            self.confusion_plot.show_confusion(None, None, "no confusion matrix: choose a truth field")
        else:
            self.accuracy_label.setText(
                f"<b>{result.truth_field}</b>, {acc.n} trials, chance {acc.chance:.3f}<br>"
                f"<span style='color:{BRAIN_COLOUR}'>brain</span>: top-1 <b>{acc.top1:.3f}</b> "
                f"[{acc.ci95[0]:.3f}, {acc.ci95[1]:.3f}], top-5 {acc.top5:.3f}<br>"
                f"<span style='color:{IMAGE_COLOUR}'>true image tokens</span>: top-1 <b>{image.top1:.3f}</b> "
                f"[{image.ci95[0]:.3f}, {image.ci95[1]:.3f}], top-5 {image.top5:.3f}{warnings}")
            self.confusion_plot.show_confusion(names, acc.confusion)
        self._show_trial_labels()

    def _show_trial_labels(self) -> None:
        result = self.tools.zero_shot
        if result is None or not self.session.has_bundle:
            return
        trial = self.session.trial
        truth = ""
        if result.truth is not None:
            truth = f" · truth: {result.names[result.truth[trial]] if result.truth[trial] >= 0 else '—'}"
        self.trial_labels.setText(f"trial {self.session.trial_id(trial)}{truth}<br>"
                                  f"brain: {', '.join(result.top(trial, 5))}<br>"
                                  f"true image: {', '.join(result.top(trial, 5, 'image'))}")

    # ----------------------------------------------------------------- concept maps

    def localize(self) -> None:
        phrase = self.concept_edit.text()
        trial = self.session.trial if self.map_combo.currentData() == "trial" else None
        fraction = self.lesion_spin.value() / 100
        versus = [v.strip() for v in self.versus_edit.text().split(",") if v.strip()]
        decoder = self.session.decoder
        self.lesion_label.setText("mapping…")

        def run(probe) -> None:
            self.workers.start(self.tools.run_concept, probe, phrase, trial, fraction, decoder, versus,
                               on_returned=lambda result: self.tools.set_concept(probe, result),
                               on_error=lambda exc: self._failed("Concept map", exc, self.lesion_label))
        self._with_probe(run)

    def _fill_label_combo(self, result) -> None:
        self.label_combo.clear()
        self.label_combo.setEnabled(result is not None)
        if result is not None:
            self.label_combo.addItem("(choose a label to map it against the others)", None)
            for label in result.labels:
                self.label_combo.addItem(label.name, label.name)

    def _label_chosen(self) -> None:
        """The chosen zero-shot label with its prompts as the phrase, the other labels as its alternatives."""
        result, name = self.tools.zero_shot, self.label_combo.currentData()
        if result is None or name is None:
            return
        self.concept_edit.setText(next(label.spec for label in result.labels if label.name == name))
        self.versus_edit.setText(", ".join(label.spec for label in result.labels if label.name != name))

    def _show_concept(self) -> None:
        result = self.tools.concept
        self.roi_plot.show_means(result.rois if result is not None else None, self._why_empty())
        self.select_button.setEnabled(result is not None)
        if result is None:
            self.lesion_label.setText("")
            return
        check, concept = result.lesion, result.concept
        where = (f"trial {self.session.trial_id(concept.trial)}" if concept.trial is not None
                 else f"the {check.trials.size} best-matching trials")
        against = f" against {', '.join(concept.versus)}" if concept.versus else ""
        text = (f"“{concept.phrase}”{against}, {concept.kind} map · silencing the top {check.top_fraction * 100:g}% "
                f"({check.n_voxels} voxels) on {where}:<br>{check.measure} {check.score_before:.3f} drops by "
                f"<b>{check.score_drop:.3f}</b>; {check.random_after.size} random lesions of as many voxels: "
                f"{check.random_score_drop:.3f} ± {check.random_score_drop_sd:.3f}")
        if check.caption_before is not None:
            text += (f"<br>caption of {self.session.trial_id(check.caption_trial)}: “{check.caption_before}”"
                     f"<br>lesioned: “{check.caption_after}”<br>random lesion: “{check.caption_random}”")
        else:
            text += f"<br>captions: {check.captions_missing}"
        if self.tools.probe is not None:
            text += warning_html(self.tools.probe.vocabulary_warning(concept.unknown))
        self.lesion_label.setText(text)
        self.select_button.setToolTip(f"Select the top {check.n_voxels} voxels of the map")
        if self.on_cortex.isChecked():
            self.show_map.emit()

    def _select_top(self) -> None:
        result = self.tools.concept
        if result is not None:
            self.select_voxels.emit(result.concept.top_voxels(result.lesion.top_fraction))

    def shutdown(self) -> None:
        self.search_runner.cancel()


def _search_job(tools: LanguageTools, probe, phrase: str):
    """Worker side of a search: the result with the probe it came from."""
    return probe, tools.run_search(probe, phrase)
