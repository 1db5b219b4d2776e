"""One trial in full: stimulus, references, decoded captions per stage, top-k retrievals and plots,
with the live synthetic decoding of the ROI selection shown beside the real trial's results.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QBoxLayout, QFrame, QGridLayout, QHBoxLayout, QLabel, QScrollArea, QSizePolicy,
                               QSpinBox, QVBoxLayout, QWidget)

from brainview.analysis.tables import retrieved_captions
from brainview.decoding.decoder import Decoded
from brainview.decoding.retrieval import rank_of
from brainview.qt.caption_list import QtRetrievedCaptions
from brainview.qt.plots import QtPlot
from brainview.qt.question_box import QtQuestionBox
from brainview.qt.thumbnails import TRUE_COLOUR, QtRetrievalRow, pixmap_from_array
from brainview.qt.workers import QtLatestRunner, QtWorkers
from brainview.state.other_models import KEY_PREFIX as MODEL_KEY
from brainview.state.session import MODELS_NOT_LOADED, STAGE_LABELS, Session, SyntheticResult
from brainview.state.streaming import CaptionSoFar

TRIAL_COLOUR = "#4aa3ff"
SYNTHETIC_COLOUR = "#f0a030"
MODE_LABELS = {"roi": "ROI only", "lesion": "lesion", "boost": "boost", "manifold": "manifold",
               "data": "preferred stimuli"}


def section_title(text: str) -> QLabel:
    label = QLabel(text, wordWrap=True)
    label.setObjectName("section")
    return label


NO_BUNDLE = "no bundle open"
#: narrower than this, the captions go above the retrievals (three caption boxes and four thumbnails a row)
SIDE_BY_SIDE_WIDTH = 860


class QtCaptionBox(QFrame):
    """A titled caption: one per stage, plus the synthetic one."""

    def __init__(self, title: str, colour: str, parent=None):
        super().__init__(parent)
        self.setObjectName("card")
        self.name = title
        self.title = QLabel(title, wordWrap=True)
        self.title.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Minimum)
        self.title.setStyleSheet(f"color: {colour}; font-weight: 600;")
        self.subtitle = QLabel(wordWrap=True)
        self.subtitle.setObjectName("muted")
        self.subtitle.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Minimum)
        self.subtitle.hide()
        self.text = QLabel(wordWrap=True, textInteractionFlags=Qt.TextSelectableByMouse)
        self.text.setObjectName("caption")
        self.text.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Minimum)  # equal widths side by side
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addWidget(self.text)
        layout.addStretch(1)

    def set_text(self, text: str | None, placeholder: str = "") -> None:
        self.text.setText(text if text else placeholder)
        self.text.setProperty("placeholder", not text)
        self.text.style().polish(self.text)

    def set_busy(self, busy: bool) -> None:
        """The title says when the caption is still being made (what the box shows is then partial)."""
        self.title.setText(self.name + ("  · decoding…" if busy else ""))


class QtTrialPlots(QWidget):
    """pyqtgraph plots: the current score over all trials (this trial marked) and the retrieval
    similarity profile (this trial's true image marked, the synthetic pattern's profile dashed)."""

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        pg.setConfigOptions(antialias=True)
        self.histogram = QtPlot("trials", grid=True)
        self.profile = QtPlot("cosine", "candidate images, best first", grid=True)
        for plot in (self.histogram, self.profile):
            plot.setMinimumSize(200, 150)  # narrower, their axes are cut (titles are elided)
            plot.show_empty(NO_BUNDLE)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.histogram, 1)
        layout.addWidget(self.profile, 1)
        session.connect("scores", lambda s: self.plot_histogram())
        session.connect("score_name", lambda s: self.plot_histogram())
        session.other_models.connect("models", lambda m: self.plot_histogram())

    def plot_histogram(self) -> None:
        session = self.session
        plot = self.histogram
        if not session.has_bundle:
            plot.show_empty(NO_BUNDLE)
            return
        name = session.score_name
        values = session.score_values(name)
        label = session.score_label(name) + ("" if name.startswith(MODEL_KEY) else f" · {STAGE_LABELS[session.stage]}")
        if values is None:
            plot.show_empty(f"{label}: {session.missing_scores.get(name, 'no scores yet')}")
            return
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            plot.show_empty(f"no {label} for any trial yet")
            return
        plot.begin_data()
        counts, edges = np.histogram(finite, bins=min(30, max(5, finite.size // 4)))
        plot.plot(edges, counts, stepMode="center", fillLevel=0, brush=(74, 163, 255, 110), pen=pg.mkPen(TRIAL_COLOUR))
        value = session.score(name)
        if value is not None:
            plot.addItem(pg.InfiniteLine(value, angle=90, pen=pg.mkPen(TRUE_COLOUR, width=2)))
            text = f"{int(value)}" if name == "image_rank" else f"{value:.3f}"
            plot.set_title(f"{label} · this trial: {text}")
        plot.setLabel("bottom", session.score_label(name))

    def plot_profile(self, real: Decoded | None, synthetic: SyntheticResult | None, why: str = NO_BUNDLE) -> None:
        """This trial's similarity to every test image, best first (``why`` there is none when ``real`` is None)."""
        plot = self.profile
        if real is None:
            plot.show_empty(why)
            return
        plot.begin_data()
        trial = self.session.trial
        profile = real.image_profile
        order = np.sort(profile)[::-1]
        ranks = np.arange(1, order.size + 1)
        if plot.plotItem.legend is None:
            legend = plot.addLegend(offset=(10, -10), labelTextSize="8pt")  # bottom left: below a falling profile
            legend.setBrush(pg.mkBrush(31, 34, 40, 220))
        plot.plot(ranks, order, pen=pg.mkPen(TRIAL_COLOUR, width=2), name="trial")
        true_rank = rank_of(profile, trial)
        plot.plot([true_rank], [float(profile[trial])], pen=None, symbol="o", symbolSize=10,
                  symbolBrush=TRUE_COLOUR, name=f"true image (#{true_rank})")
        if synthetic is not None:
            sorted_synthetic = np.sort(synthetic.decoded.image_profile)[::-1]
            plot.plot(ranks, sorted_synthetic, pen=pg.mkPen(SYNTHETIC_COLOUR, width=2, style=Qt.DashLine),
                      name="synthetic")
        plot.set_title(f"Retrieval similarity profile · {STAGE_LABELS[real.stage]}")


class QtTrialView(QWidget):
    """Everything about the current trial; the synthetic column fills in as live decoding returns.

    Its plots (:attr:`plots`) are a separate widget that the window places where there is room.
    """

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.synthetic: SyntheticResult | None = None
        self.synthetic_label = ""
        self.real: Decoded | None = None
        self._so_far: dict[str, CaptionSoFar] = {}  # stage -> the shown trial's caption while it streams
        self._predictor: QtLatestRunner | None = None  # set_workers: tokens of a trial not predicted yet

        self.title = QLabel()
        self.title.setObjectName("title")
        self.k_spin = QSpinBox(minimum=1, maximum=20, value=session.k, prefix="top ",
                               toolTip="How many retrievals to show")
        self.k_spin.valueChanged.connect(session.set_k)
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.k_spin)

        self.note = QLabel(wordWrap=True)
        self.note.setObjectName("note")
        self.note.hide()

        self.stimulus = QLabel(alignment=Qt.AlignCenter)
        self.stimulus.setFixedSize(208, 208)
        self.stimulus.setObjectName("stimulus")
        self.references = QLabel(wordWrap=True, textInteractionFlags=Qt.TextSelectableByMouse,
                                 alignment=Qt.AlignTop | Qt.AlignLeft)
        references_box = QVBoxLayout()
        references_box.addWidget(section_title("Reference captions"))
        references_box.addWidget(self.references, 1)
        top = QHBoxLayout()
        top.addWidget(self.stimulus, 0, Qt.AlignTop)
        top.addLayout(references_box, 1)

        self.caption_boxes = {stage: QtCaptionBox(STAGE_LABELS[stage].capitalize(), TRIAL_COLOUR)
                              for stage in ("stage1", "stage2")}
        self.synthetic_box = QtCaptionBox("Synthetic", SYNTHETIC_COLOUR)
        captions = QGridLayout()
        for column, box in enumerate((*self.caption_boxes.values(), self.synthetic_box)):
            captions.addWidget(box, 0, column)
            captions.setColumnStretch(column, 1)
        self.questions = QtQuestionBox("Ask about this trial", {"brain": "brain", "image": "true image"})
        self.synthetic_questions = QtQuestionBox("Ask the selection", {"synthetic": "synthetic"},
                                                 placeholder="what is in this region's preferred scene?")
        self.extra_sections = QVBoxLayout()  # other parts' rows under the decoded captions (other models)
        captions.addLayout(self.extra_sections, 1, 0, 1, 3)
        captions.addWidget(self.questions, 2, 0, 1, 2)
        captions.addWidget(self.synthetic_questions, 2, 2)

        self.images_title = section_title("Retrieved images")
        self.trial_images = QtRetrievalRow()
        self.synthetic_images = QtRetrievalRow()
        images = QGridLayout()
        images.addWidget(self._row_label("trial", TRIAL_COLOUR), 0, 0)
        images.addWidget(self.trial_images, 0, 1)
        images.addWidget(self._row_label("synthetic", SYNTHETIC_COLOUR), 1, 0)
        images.addWidget(self.synthetic_images, 1, 1)
        images.setColumnStretch(1, 1)

        self.trial_texts = QtRetrievedCaptions()
        self.synthetic_texts = QtRetrievedCaptions()
        texts = QGridLayout()
        texts.addWidget(self._row_label("trial · stage 2", TRIAL_COLOUR), 0, 0)
        texts.addWidget(self._row_label("synthetic", SYNTHETIC_COLOUR), 0, 1)
        texts.addWidget(self.trial_texts, 1, 0)
        texts.addWidget(self.synthetic_texts, 1, 1)

        self.plots = QtTrialPlots(session)

        left = QVBoxLayout()
        left.addLayout(top)
        left.addWidget(section_title("Decoded captions"))
        left.addLayout(captions)
        left.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(self.images_title)
        right.addLayout(images)
        right.addWidget(section_title("Retrieved captions (stage 2)"))
        right.addLayout(texts, 1)
        columns = self.columns = QHBoxLayout()
        columns.setSpacing(16)
        columns.addLayout(left, 1)
        columns.addLayout(right, 1)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(10, 8, 10, 10)
        layout.setSpacing(6)
        layout.addLayout(header)
        layout.addWidget(self.note)
        layout.addLayout(columns, 1)
        scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)  # content wraps and rows scroll instead
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        for event in ("bundle", "trial", "stage", "k"):
            session.connect(event, lambda s: self.refresh())
        session.connect("decoder", lambda s: self.refresh())
        session.repeats.connect("choice", lambda r: self.refresh())  # the mean or one repeat of each trial
        for event in ("bundle", "trial", "stage"):  # a new pattern (or brain model) starts a new dialogue
            session.connect(event, lambda s: (self.questions.clear(), self.synthetic_questions.clear()))
        session.connect("trial", lambda s: self._so_far.clear())  # a trial shown again streams from its start
        session.connect("notes", lambda s: self._show_note())
        session.connect("captions", lambda s: self._show_captions())
        self.show_empty("Open a decoding bundle with File → Open.")

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Captions beside the retrievals where they fit side by side, above them where the trial view is
        narrow (a 1366 px screen with the Subjects dock open): never cut at the right edge."""
        super().resizeEvent(event)
        wanted = (QBoxLayout.LeftToRight if event.size().width() >= SIDE_BY_SIDE_WIDTH
                  else QBoxLayout.TopToBottom)
        if wanted != self.columns.direction():
            self.columns.setDirection(wanted)

    @staticmethod
    def _row_label(text: str, colour: str) -> QLabel:
        label = QLabel(text)
        label.setStyleSheet(f"color: {colour}; font-weight: 600;")
        label.setAlignment(Qt.AlignLeft | Qt.AlignVCenter)
        return label

    # ----------------------------------------------------------------- display

    def show_empty(self, message: str) -> None:
        self.title.setText("No bundle")
        self.references.setText(message)
        self.stimulus.clear()
        for box in self.caption_boxes.values():
            box.set_text(None)
        self.synthetic_box.set_text(None)
        self.trial_images.show_message("")
        self.synthetic_images.show_message("")

    def refresh(self) -> None:
        """Redraw everything for the session's current trial (retrieval is instant; captions may follow)."""
        session = self.session
        if not session.has_bundle:
            return
        trial = session.trial
        self.k_spin.blockSignals(True)
        self.k_spin.setMaximum(min(20, session.n_trials))
        self.k_spin.setValue(session.k)
        self.k_spin.blockSignals(False)
        self.title.setText(f"Trial {session.trial_id()}  ·  {trial + 1} / {session.n_trials}"
                           + (f"  ·  {session.repeats.label(trial)}" if session.repeats.repeat else ""))
        self.stimulus.setPixmap(pixmap_from_array(session.stimulus(), 200))
        self.references.setText("\n".join(f"•  {c}" for c in session.references()))
        self._show_note()
        if not session.trial_ready() and self._predictor is not None:
            self._wait_for_tokens(trial)
            return
        self.real = session.retrieve()
        self.images_title.setText(f"Retrieved images · {STAGE_LABELS[session.stage]} · "
                                  f"true image rank {rank_of(self.real.image_profile, trial)}")
        self.trial_images.show_images(session, self.real, trial)
        stage2 = (self.real if session.stage == "stage2"
                  else session.retrieve(stage="stage2") if "stage2" in session.stages else None)
        texts = stage2.texts if stage2 is not None else None
        self._fill_texts(self.trial_texts, texts, trial, "stage 2 is not in this bundle")
        for stage, box in self.caption_boxes.items():
            box.setVisible(stage in session.stages)
        self._show_captions()
        self._enable_questions()
        self._show_synthetic()
        self.plots.plot_histogram()
        self.plots.plot_profile(self.real, self.synthetic)

    def _wait_for_tokens(self, trial: int) -> None:
        """The trial's tokens are not predicted yet (a second at NSD size, before every trial is):
        show what is at hand now, predict them in a worker (the newest trial wins), then refresh."""
        self.real = None
        waiting = "predicting this trial's brain tokens…"
        self.images_title.setText(f"Retrieved images · {STAGE_LABELS[self.session.stage]}")
        self.trial_images.show_message(waiting)
        self.trial_texts.show_message(waiting)
        self.plots.plot_profile(None, None, waiting)
        for stage, box in self.caption_boxes.items():
            box.setVisible(stage in self.session.stages)
        self._show_captions()
        self._predictor.submit(self.session.decoder.predict_trial, trial, self.session.shown_stages())

    def _trial_predicted(self, trial: int) -> None:
        if self.session.has_bundle and trial == self.session.trial and self.session.trial_ready():
            self.refresh()

    def _show_note(self) -> None:
        notes = list(self.session.notes)
        if not notes and not self.session.can_caption and self.session.captions_missing:
            notes.append(f"Captions are off: {self.session.captions_missing}. Retrieval still works.")
        self.note.setText("\n".join(notes))
        self.note.setVisible(bool(notes))

    def _show_captions(self) -> None:
        session = self.session
        if not session.has_bundle:
            return
        for stage, box in self.caption_boxes.items():
            caption = session.caption(stage)
            so_far = self._so_far.get(stage)
            streaming = caption is None and so_far is not None and so_far.shows_in(session)
            box.set_text(so_far.text if streaming else caption,
                         self._why_no_caption(pending=caption is None, working="decoding…"))
            box.set_busy(streaming and not so_far.done)

    def show_caption_so_far(self, step: CaptionSoFar) -> None:
        """The shown trial's caption as it is generated, token by token (its box's title says it is partial);
        a step of another trial, repeat choice or bundle is never shown."""
        if step.shows_in(self.session):
            self._so_far[step.stage] = step
            self._show_captions()

    def _why_no_caption(self, pending: bool, working: str) -> str:
        """What a caption box says while it has no caption: never an empty box without a reason."""
        session = self.session
        if not session.can_caption:
            if session.captions_missing == MODELS_NOT_LOADED:
                return "waiting for the language models… (captioned as soon as they are in)"
            return f"captions are off: {session.captions_missing}" if session.captions_missing else "captions are off"
        return working if pending else "(the language model generated no words for this pattern)"

    def _fill_texts(self, widget: QtRetrievedCaptions, texts, true_trial: int | None, empty: str) -> None:
        """The retrieved captions with their trial ids, the references of ``true_trial`` marked."""
        if texts is None:
            widget.show_message(empty)
        else:
            widget.show_rows(retrieved_captions(self.session.bundle, texts, true_trial))

    def set_workers(self, workers: QtWorkers) -> None:
        """The window's workers run the question boxes' generation and the prediction of a trial's
        tokens not predicted yet (and stop with the window)."""
        self.questions.workers = self.synthetic_questions.workers = workers
        self._predictor = QtLatestRunner(workers, delay_ms=0, parent=self)
        self._predictor.result.connect(self._trial_predicted)
        self._predictor.failed.connect(lambda exc: self.trial_images.show_message(f"cannot predict this trial: {exc}"))

    def _enable_questions(self) -> None:
        session = self.session
        if not session.can_caption:
            reason = ("the language models are not loaded yet" if session.captions_missing == MODELS_NOT_LOADED
                      else f"no captioner ({session.captions_missing})")
            self.questions.set_asker(None, reason)
            self.synthetic_questions.set_asker(None, reason)
            return

        def ask_trial(question, histories):  # on the GUI thread: what to answer is fixed here
            trial, stage = session.trial, session.stage
            return partial(session.iter_answer_trial, question, histories, trial, stage)

        def ask_selection(question, histories):
            voxels, settings, trial = session.selection.voxels(), session.synthetic, session.trial
            return partial(session.iter_answer_synthetic, question, histories, voxels, settings, trial)

        self.questions.title.setText(f"Ask about this trial · {STAGE_LABELS[session.stage]}")
        self.questions.set_asker(ask_trial)
        self.synthetic_questions.set_asker(ask_selection if self.synthetic is not None else None,
                                           "select an ROI or paint on the cortex first")

    # ----------------------------------------------------------------- synthetic

    def set_synthetic(self, result: SyntheticResult | None, label: str = "") -> None:
        """Show the newest live-decoding result (None: the selection is empty); a new selection starts
        a new dialogue."""
        previous = self.synthetic
        if (result is not None and previous is not None and label == self.synthetic_label
                and result.decoded.texts is previous.decoded.texts
                and result.decoded.images is previous.decoded.images):
            self.synthetic = result  # the same decoding with more of its caption: only the caption box changes
            self.synthetic_box.set_text(result.decoded.caption,
                                        self._why_no_caption(result.caption_pending, "captioning…"))
            self._enable_questions()
            return
        if result is None or label != self.synthetic_label:
            self.synthetic_questions.clear()
        self.synthetic, self.synthetic_label = result, label
        if self.session.has_bundle:
            self._enable_questions()
        self._show_synthetic()
        self.plots.plot_profile(self.real, self.synthetic)

    def set_synthetic_busy(self, busy: bool) -> None:
        self.synthetic_box.set_busy(busy)
        self.synthetic_box.subtitle.setText(self.synthetic_label)
        self.synthetic_box.subtitle.setVisible(bool(self.synthetic_label))

    def _show_synthetic(self) -> None:
        result = self.synthetic
        self.set_synthetic_busy(False)
        if result is None:
            self.synthetic_box.subtitle.hide()
            hint = "Check an ROI or paint on the cortex to decode a synthetic pattern."
            self.synthetic_box.set_text(None, hint)
            self.synthetic_images.show_message("no selection")
            self._fill_texts(self.synthetic_texts, None, None, "no selection")
            return
        decoded = result.decoded
        self.synthetic_box.set_text(decoded.caption, self._why_no_caption(result.caption_pending, "captioning…"))
        self.synthetic_images.show_images(self.session, decoded, result.trial)
        self._fill_texts(self.synthetic_texts, decoded.texts, result.trial, "caption retrieval needs stage 2")
