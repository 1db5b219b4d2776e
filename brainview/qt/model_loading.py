"""Loading a bundle's language models on the chosen device, in workers, for one main window: first
the plan (what the captioner will take; on a CPU the window asks before a big one), then the models,
then the current trial's caption (and every trial's, when asked). Retrieval works meanwhile.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QPushButton

from brainview.qt import dialogs
from brainview.qt.window_chrome import DEVICE_LABELS

#: why captions are off after the user declined loading a large captioner on the CPU
RETRIEVAL_ONLY = "you chose retrieval-only browsing"
from brainview.state.session import device_name, load_decoder, plan_language_models


class QtModelLoading(QObject):
    """The language models of the bundle on screen of ``window`` (its session, workers and status bar)."""

    progress = Signal(int, int, str)  # emitted from the loading worker, shown on the GUI thread

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        # a large captioner on the CPU: captioning every trial takes long, so it is offered, not started
        self.score_button = QPushButton(toolTip="Caption and score every test trial in the background; the "
                                                "trial you look at is still captioned first")
        self.score_button.hide()
        self.score_button.clicked.connect(self._score_now)
        window.statusBar().addPermanentWidget(self.score_button)

    def _score_now(self) -> None:
        self.score_button.hide()
        self.window.passes.score_all()

    def _offer_scoring(self, plan) -> None:
        session = self.window.session
        total = plan.seconds_per_caption * session.n_trials * len(session.stages) if plan.speed else None
        self.score_button.setText(f"Caption all {session.n_trials} trials"
                                  + (f" (about {total / 60:.0f} min)" if total else ""))
        self.score_button.show()

    def load(self, score_trials: bool = False) -> None:
        """Load the bundle's language models on the chosen device in a worker, then caption (and score)."""
        window, session, bundle = self.window, self.window.session, self.window.session.bundle
        where = DEVICE_LABELS[window.device]
        session.set_notes([f"Loading the language models ({where})… retrieval already works."])
        window.statusBar().showMessage(f"Loading the language models on {where}…")
        window.passes.show_progress(1, 2, "loading the language models")
        self.score_button.hide()
        asked = []  # the plan of a large captioner on the CPU, once the user chose to load it

        def loaded(result) -> None:
            decoder, notes = result
            if session.bundle is not bundle:
                return
            window.progress.hide()
            session.set_decoder(decoder, device_name(decoder), notes)
            window.update_status()
            window.statusBar().showMessage(f"Language models on {device_name(decoder)}" if session.can_caption
                                         else "Captions are off", 5000)
            window.caption_current_trial()
            if score_trials and session.can_caption:
                if asked and device_name(decoder) == "cpu":
                    self._offer_scoring(asked[0])
                else:
                    window.passes.score_all()
            window.models_loaded.emit()

        def failed(exc: BaseException) -> None:
            window.progress.hide()
            session.set_notes([f"Captions are off: {dialogs.error_text(exc)}"])
            window.worker_failed(exc)

        def planned(plan) -> None:
            """Say what the captioner will take before loading it; on a CPU ask first when it is big."""
            if session.bundle is not bundle:
                return
            if plan is not None and plan.ask_first and not dialogs.ask(
                    window, "Load the language model on the CPU?",
                    f"{plan.text()}\n\nLoad it on the CPU, or browse with retrieval only (trials, ranks, the "
                    "cortex and synthetic retrievals all work; captions stay off)?",
                    "Load on the CPU", "Retrieval only"):
                window.progress.hide()
                session.decoder.captions_missing = RETRIEVAL_ONLY  # the caption boxes stop waiting for models
                session.set_decoder(session.decoder, "none", ["Captions are off: " + RETRIEVAL_ONLY + ". " + plan.text()])
                window.models_loaded.emit()
                return
            if plan is not None and plan.ask_first:
                asked.append(plan)
            if plan is not None:
                session.set_notes([f"Loading the language models ({where})… retrieval already works. {plan.text()}"])
            window.workers.start(load_decoder, bundle, window.device, progress=self.progress.emit,
                                 cpu_precision=window.cpu_precision, on_returned=loaded, on_error=failed)

        window.workers.start(plan_language_models, bundle, window.device, window.cpu_precision, on_returned=planned,
                             on_error=failed)
