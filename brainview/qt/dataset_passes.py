"""The passes over the whole test set that follow opening a bundle, each in a worker with its progress in
the window's status bar: every trial's tokens and image rank, then the ROIs' weight sums, and every
trial's captions and scores. Why a part of its own: these passes outlive a bundle only as results to
drop, so starting, following and stopping them is one concern, apart from showing a bundle.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject

from brainview.decoding.progress import time_left


class QtDatasetPasses(QObject):
    """Whole-test-set work for the bundle on screen of one main window (its session, workers, progress bar)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.predicting = None  # the worker predicting every trial's tokens and ranks after opening
        self.summing = None  # ... then the ROIs' weight sums, where a prediction cache skipped that pass
        self.scoring = None  # the worker captioning and scoring every trial
        self._phase = None  # (what, when it started, steps done then): the pace of the phase shown

    def show_progress(self, done: int, total: int, what: str) -> None:
        """The phase's own count ("captioning stage 2: 48 of 300") and an estimate from its pace so far."""
        now = time.monotonic()
        if self._phase is None or self._phase[0] != what or done < self._phase[2]:
            self._phase = (what, now, done)
        _, started, first = self._phase
        progress = self.window.progress
        progress.setRange(0, max(total, 1))
        progress.setValue(done)
        estimate = time_left(now - started, done - first, total - done)
        progress.setFormat(f"{what}: {done} of {total}" + (f" · {estimate}" if estimate else ""))
        progress.setToolTip(progress.format())
        progress.setVisible(done < total)

    def predict_all(self) -> None:
        """Every trial's tokens and image rank, in the background, after the first trial is shown:
        at NSD size that is one pass over 1.5 GB of weights per stage (none with a prediction cache)."""
        if self.predicting is not None or self.session.ranks_ready:
            return

        def failed(exc: BaseException) -> None:
            self.predicting = None
            self.window.progress.hide()
            self.window.worker_failed(exc)

        self.predicting = self.window.workers.start(self.session.iter_predictions, on_yielded=self._progress_here(),
                                                    on_returned=self.predicted, on_error=failed)

    def predicted(self, result) -> None:
        """Take every trial's predictions (from the worker, or computed in place), then sum the ROIs."""
        window = self.window
        if result.bundle is not self.session.bundle:
            return
        self.predicting = None
        self.session.set_predictions(result)
        window.ranks_arrived(result)
        window.progress.hide()
        window.statusBar().showMessage(f"Ranked all {self.session.n_trials} test trials", 5000)
        self.summing = window.workers.start(self.session.iter_sum_rois, on_yielded=self._progress_here(),
                                            on_error=window.worker_failed)  # a verified cache skipped that pass

    def _progress_here(self):
        """A progress callback for the bundle on screen now (a replaced bundle's steps are not shown)."""
        bundle = self.session.bundle

        def progressed(step) -> None:
            if self.session.bundle is bundle:
                self.show_progress(step.done, step.total, step.what)

        return progressed

    def score_all(self) -> None:
        """Caption every trial on every stage and score them, in the background (it predicts every
        trial's tokens itself when the prediction worker has not finished yet)."""
        session, window, bundle = self.session, self.window, self.session.bundle

        def finished(result) -> None:
            if session.bundle is bundle:
                session.set_caption_scores(result)
                window.statusBar().showMessage("Per-trial caption scores are ready", 5000)

        def failed(exc: BaseException) -> None:
            window.progress.hide()
            window.worker_failed(exc)

        def progressed(step) -> None:
            self.show_progress(step.done, step.total, step.what)
            if step.captions and session.bundle is bundle:
                session.store_captions(step.captions)

        self.scoring = window.workers.start(session.iter_caption_scores, on_yielded=progressed,
                                            on_returned=finished, on_error=failed)

    def stop(self) -> None:
        """Stop every pass; what they still deliver is dropped."""
        for worker in (self.scoring, self.predicting, self.summing):
            if worker is not None:
                worker.quit()
        self.scoring = self.predicting = self.summing = None
