"""The main window: trial browser and ROI panel on the left; on the right the trial view above the
cortex and the plots. It is the controller between the :class:`~brainview.state.session.Session` and the
widgets: it opens bundles in workers, has their language models loaded
(:mod:`brainview.qt.model_loading`), starts the whole-test-set passes
(:mod:`brainview.qt.dataset_passes`), and feeds the ROI selection to live decoding.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget

from brainview.decoding.synthetic import TRIAL_MODES
from brainview.errors import Cancelled
from brainview.paths import demo_bundle_path
from brainview.qt import dialogs
from brainview.qt.cpu_precision_menu import last_cpu_precision
from brainview.qt.dataset_passes import QtDatasetPasses
from brainview.qt.edit_actions import QtEditActions
from brainview.qt.language_panel import QtLanguagePanel
from brainview.qt.model_loading import QtModelLoading
from brainview.qt.other_models import QtOtherModels
from brainview.qt.cortex_shows import QtCortexShows
from brainview.qt.overlay_list import QtOverlayList
from brainview.qt.preferences import QtPreferences
from brainview.qt.preferred_view import add_preferred_dock
from brainview.qt.repeats_panel import QtRepeatsPanel
from brainview.qt.roi_panel import QtRoiPanel
from brainview.qt.subjects_panel import QtSubjectsPanel
from brainview.qt.trial_browser import QtTrialBrowser
from brainview.qt.trial_view import MODE_LABELS, QtTrialView
from brainview.qt.window_chrome import DEVICE_LABELS, build_menus, build_status_bar, build_toolbar, memory_text
from brainview.qt.workers import QtLatestRunner, QtWorkers
from brainview.state.overlays import OverlayLayers
from brainview.state.session import STAGE_LABELS, Loaded, Session, SyntheticResult, finish, load, open_for_browsing

MAX_RECENT = 8
#: how long closing waits for workers told to stop; one still busy after it (a model loading, a token
#: being generated) is left behind: :func:`brainview.qt.app.run_app` ends the process without it
CLOSE_WAIT_MS = 400


def _cortex_view_module():
    """The VTK cortex widget's module, or None when VTK cannot be imported here."""
    try:
        from brainview.qt import cortex_view
    except ImportError:
        return None
    return cortex_view


def _scrolled(panel: QWidget) -> QScrollArea:
    """``panel`` in a scroll area that follows its width and scrolls when it is taller than the room."""
    scroller = QScrollArea(widgetResizable=True, frameShape=QScrollArea.NoFrame)
    scroller.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    scroller.setMinimumWidth(panel.minimumSizeHint().width() + scroller.verticalScrollBar().sizeHint().width())
    scroller.setWidget(panel)
    return scroller


class QtMainWindow(QMainWindow):
    """brainview's window. ``open_bundle`` loads in a worker; ``open_bundle_now`` blocks (screenshots)."""

    bundle_loaded = Signal()  # the bundle is shown: trials, retrieval and the cortex work
    models_loaded = Signal()  # the language models are loaded (or captions are off, with the reason shown)
    load_failed = Signal(str)

    def __init__(self, session: Session | None = None, device: str | None = None, settings: QSettings | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session or Session()
        self.settings = settings if settings is not None else QSettings("brainview", "brainview")
        self.device = QtPreferences.last_device(self.settings) if device is None else device
        self.cpu_precision = last_cpu_precision(self.settings)
        self.workers = QtWorkers(self)
        self.live = QtLatestRunner(self.workers, delay_ms=60, parent=self)
        self.trial_captioner = QtLatestRunner(self.workers, delay_ms=60, parent=self)
        self._captioning = None  # (bundle, trial, repeat) the trial captioner is working on
        self._load_generation = 0
        self._shown: Loaded | None = None  # the bundle on screen, with what was prepared for it
        self.passes = QtDatasetPasses(self)
        self.model_loading = QtModelLoading(self)
        self.score_on_open = True  # caption and score every trial in the background after opening

        self.browser = QtTrialBrowser(self.session)
        self.trial_view = QtTrialView(self.session)
        self.trial_view.set_workers(self.workers)
        self.other_models = QtOtherModels(self.session, self.workers)
        self.trial_view.extra_sections.addWidget(self.other_models)
        self.other_models.sort_requested.connect(self.browser.sort_by_difference)
        self.roi_panel = QtRoiPanel(self.session)
        self.language_panel = QtLanguagePanel(self.session, self.workers, device=lambda: self.device)
        self._cortex_module = _cortex_view_module()
        self.cortex_view = self._cortex_module.QtCortexView() if self._cortex_module is not None else None
        self.repeats_panel = QtRepeatsPanel(self.session, self.workers)  # the trial from each single repeat
        self.left_tabs = QTabWidget()
        for panel, title in ((self.roi_panel, "ROIs"), (self.language_panel, "Ask in language"),
                             (self.repeats_panel, "Repeats")):
            self.left_tabs.addTab(_scrolled(panel), title)  # tall panels scroll; the trial table keeps its rows
        cortex_area = self.cortex_view if self.cortex_view is not None else self._cortex_placeholder()

        # left: trials and ROIs; right: the trial on top, the cortex (wide: two hemispheres) and plots below
        left = QSplitter(Qt.Vertical)
        left.addWidget(self.browser)
        left.addWidget(self.left_tabs)
        left.setSizes([470, 530])
        bottom = QSplitter(Qt.Horizontal)
        bottom.addWidget(cortex_area)
        bottom.addWidget(self.trial_view.plots)
        bottom.setStretchFactor(0, 3)
        bottom.setStretchFactor(1, 1)
        bottom.setSizes([900, 330])
        right = QSplitter(Qt.Vertical)
        right.addWidget(self.trial_view)
        right.addWidget(bottom)
        right.setSizes([560, 400])
        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([370, 1230])
        for splitter, name in ((left, "trials_rois"), (bottom, "cortex_plots"), (right, "trial_cortex"),
                               (self.splitter, "main")):
            splitter.setChildrenCollapsible(False)
            splitter.setObjectName(name)
        self.setCentralWidget(self.splitter)
        self.subjects_panel = QtSubjectsPanel(self.session, device=lambda: self.device, demo_bundle=demo_bundle_path())
        self.subjects_dock = QDockWidget("Subjects", self, objectName="subjects_dock")
        # the panel scrolls up and down; across, the dock never gets narrower than the panel's minimum
        # (its tables would be cut at the right edge): the central area gives way instead
        scroller = _scrolled(self.subjects_panel)
        scroller.setMinimumWidth(self.subjects_panel.minimumSizeHint().width()
                                 + scroller.verticalScrollBar().sizeHint().width() + 2 * scroller.frameWidth())
        self.subjects_dock.setWidget(scroller)
        self.addDockWidget(Qt.RightDockWidgetArea, self.subjects_dock)
        self.subjects_dock.visibilityChanged.connect(self._fit_subjects_dock)
        self.subjects_dock.hide()  # shown when a study opens or the demo study is offered (View menu too)
        self.preferred_view, self.preferred_dock = add_preferred_dock(self, self.session, self.workers)
        # the right-hand docks share their area as tabs (as napari's and FSLeyes' panels do) rather than
        # halving its height, where the Subjects tables and the preferred-stimuli table both need it
        self.tabifyDockWidget(self.subjects_dock, self.preferred_dock)

        self.edit_actions = QtEditActions(self)
        self.cortex_shows = QtCortexShows(self)  # the toolbar places its chooser
        build_toolbar(self)
        build_menus(self)
        build_status_bar(self)
        self.overlay_layers = OverlayLayers()  # after the toolbar: its "Cortex shows" names the shown layer
        self.overlay_list = QtOverlayList(self.overlay_layers, self.cortex_view,
                                          lambda: self.cortex_shows.source)
        self.left_tabs.addTab(_scrolled(self.overlay_list), "Overlays")
        self.overlay_list.apply_all()  # before the preferences: the colour map kept there is the trial pattern's
        self.setWindowTitle("brainview")
        self.resize(1600, 1000)
        self.setAcceptDrops(True)
        self._shown_once = False
        self.preferences = QtPreferences(self)
        self.preferences.restore()

        self.browser.trial_selected.connect(self.session.set_trial)
        self.roi_panel.error.connect(lambda title, text: dialogs.show_error(self, title, text))
        self.roi_panel.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.live.started.connect(lambda: self.trial_view.set_synthetic_busy(True))
        self.live.idle.connect(lambda: self.trial_view.set_synthetic_busy(False))
        # the synthetic overlay is recoloured once its decoding is on screen: recolouring and rendering every
        # vertex per brush dab, or while the language model runs, would slow both
        self.live.idle.connect(self.cortex_shows.timer.start)
        self.model_loading.progress.connect(self.passes.show_progress)
        self.live.partial.connect(self._show_synthetic)  # retrievals first, the caption follows
        self.live.result.connect(self._show_synthetic)
        self.live.failed.connect(self.worker_failed)
        self.trial_captioner.partial.connect(self.trial_view.show_caption_so_far)  # token by token
        self.trial_captioner.result.connect(self.session.store_captions)
        self.trial_captioner.failed.connect(self.worker_failed)
        self.session.connect("trial", lambda s: self._trial_changed())
        self.session.repeats.connect("choice", lambda r: self.caption_current_trial())  # that repeat's caption
        self.session.connect("stage", lambda s: self._sync_stage())
        self.session.connect("synthetic", lambda s: self._selection_changed())
        self.session.connect("k", lambda s: self._selection_changed())
        # a selection decoded before the language models were in (a reopened session, another subject)
        # is decoded again once they are, so its caption comes
        self.session.connect("decoder", lambda s: self._selection_changed())
        if self.cortex_view is not None:
            self.cortex_view.vertex_picked.connect(self._vertex_picked)
            # where full-detail frames are slow, the cortex stays coarse until the decoding is on screen
            self.live.started.connect(lambda: self.cortex_view.hold_full_detail(True))
            self.live.idle.connect(lambda: self.cortex_view.hold_full_detail(False))
        self.overlay_list.show_layer.connect(self.cortex_shows.choose)
        self.language_panel.show_map.connect(self.cortex_shows.show_concept)
        self.language_panel.select_voxels.connect(lambda voxels: self.session.selection.replace(voxels))
        self.language_panel.sort_by_match.connect(self.browser.sort_by_match)
        self.language_panel.error.connect(lambda title, text: dialogs.show_error(self, title, text))
        self.subjects_panel.open_subject.connect(self.open_bundle)
        self.subjects_panel.error.connect(lambda title, text: dialogs.show_error(self, title, text))
        self.subjects_panel.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.subjects_panel.attention.connect(self.subjects_dock.show)
        self.bundle_loaded.connect(self.subjects_panel.bundle_shown)
        self.session.connect("trial", lambda s: self.subjects_panel.trial_changed())

    # ----------------------------------------------------------------- building

    def _cortex_placeholder(self) -> QWidget:
        placeholder = QWidget()
        label = QLabel("The cortex view needs VTK with OpenGL.", alignment=Qt.AlignCenter)
        label.setObjectName("muted")
        QVBoxLayout(placeholder).addWidget(label)
        return placeholder

    def update_status(self) -> None:
        loaded = self.session.loaded_device
        self.device_label.setText(f"Device: {DEVICE_LABELS.get(self.device, self.device)}"
                                  + (f" → {loaded}" if self.session.has_bundle else ""))
        self.memory_label.setText(memory_text(loaded))

    def _fit_subjects_dock(self, visible: bool) -> None:
        """A dock opening takes its room from the trial and the cortex: on a small screen only its minimum."""
        if visible:
            width = max(self.subjects_dock.widget().minimumWidth(), min(500, int(0.28 * self.width())))
            self.resizeDocks([self.subjects_dock], [width], Qt.Horizontal)

    def show_panel(self, panel: QWidget) -> None:
        """Bring the left tab holding ``panel`` to the front."""
        for index in range(self.left_tabs.count()):
            if self.left_tabs.widget(index).isAncestorOf(panel):
                self.left_tabs.setCurrentIndex(index)

    # ----------------------------------------------------------------- opening

    def choose_bundle(self) -> None:
        recent = self.recent_bundles()
        path = dialogs.choose_bundle(self, str(Path(recent[0]).parent) if recent else "")
        if path:
            self.open_bundle(path)

    def recent_bundles(self) -> list[str]:
        value = self.settings.value("recent_bundles", [])
        return [value] if isinstance(value, str) else list(value or [])

    def remember(self, path: str) -> None:
        """Put a bundle or session file first in File → Open recent."""
        path = str(Path(path).resolve())
        recent = [path] + [p for p in self.recent_bundles() if p != path]
        self.settings.setValue("recent_bundles", recent[:MAX_RECENT])

    def show_message(self, text: str) -> None:
        """A message where the trial would be (no bundle yet) and in the status bar."""
        self.trial_view.show_empty(text)
        self.statusBar().showMessage(text)

    def open_bundle(self, path: str | Path) -> None:
        """Open a bundle in a worker and show it, then load its language models in another; the window
        stays responsive throughout and retrieval works before the models are in."""
        self._load_generation += 1
        generation = self._load_generation
        self.statusBar().showMessage(f"Opening {path}…")
        self.passes.show_progress(0, 2, "opening the bundle")

        def opened(loaded: Loaded) -> None:
            if generation == self._load_generation and self._loaded(loaded, score_trials=False):
                self.model_loading.load(score_trials=self.score_on_open)

        self.workers.start(open_for_browsing, str(path), on_returned=opened,
                           on_error=lambda exc: generation == self._load_generation and self._load_failed(path, exc))

    def open_bundle_now(self, path: str | Path, score_trials: bool = False) -> None:
        """Open a bundle with its models, every trial's rank and the ROIs' sums on the GUI thread (blocks);
        raises ``UserError`` for a broken bundle, or the views' error (after restoring the previous
        bundle) instead of showing a dialog."""
        self._loaded(load(str(path), self.device, cpu_precision=self.cpu_precision), score_trials=score_trials,
                     dialog=False, predict=False)
        predictions = finish(self.session.iter_predictions())
        finish(self.session.iter_sum_rois())
        self.passes.predicted(predictions)
        self.models_loaded.emit()

    def _load_failed(self, path, exc: BaseException) -> None:
        self.progress.hide()
        message = dialogs.error_text(exc)
        self.statusBar().showMessage(f"Could not open {path}", 8000)
        self.load_failed.emit(message)
        dialogs.show_error(self, "Cannot open the bundle", message)

    def _stop_background(self) -> None:
        """Drop every result still coming for the bundle on screen and stop its captioning at once."""
        self.live.cancel()
        self._stop_trial_captions()
        self.passes.stop()
        if self.session.decoder is not None:
            self.session.decoder.cancel()

    def _loaded(self, loaded: Loaded, score_trials: bool = True, dialog: bool = True, predict: bool = True) -> bool:
        """Show a validated, prepared bundle: one transaction. Every view switches to it, or, if any
        view fails, the previous bundle is shown again and a dialog says why (``dialog=False``: the
        error is raised). Returns whether it is shown."""
        previous = self._shown
        self._stop_background()
        self.trial_view.set_synthetic(None)  # results of the old bundle must never index the new one
        try:
            self._switch_to(loaded, score_trials, predict)
        except Exception as exc:  # noqa: BLE001 - a bundle the views cannot show is refused, never half-shown
            self._stop_background()
            if previous is not None:
                previous.decoder.resume()
                self._switch_to(previous, score_trials=False)
            if not dialog:
                raise
            self._load_failed(loaded.bundle.path, exc)
            return False
        self._shown = loaded
        self.bundle_loaded.emit()
        return True

    def _switch_to(self, loaded: Loaded, score_trials: bool, predict: bool = True) -> None:
        self.session.set_loaded(loaded)
        session = self.session
        self.setWindowTitle(f"brainview — {session.bundle.name}")
        self.remember(str(session.bundle.path))
        self.stage_combo.blockSignals(True)
        self.stage_combo.clear()
        for stage in session.stages:
            self.stage_combo.addItem(STAGE_LABELS[stage], stage)
        self.stage_combo.blockSignals(False)
        self._sync_stage()
        if self.cortex_view is not None:
            self.cortex_view.set_cortex(session.cortex)
            self.cortex_view.set_selection_model(session.selection)
            self.cortex_view.set_roi_outlines({name: session.bundle.roi_voxels(name) for name in session.bundle.rois})
            self.roi_panel.set_colors(self.cortex_view.roi_outline_colors)
        session.selection.on_change(lambda selection: self._selection_changed())
        self.trial_view.set_synthetic(None)
        self.cortex_shows.reset()  # the new selection is empty, the old concept map gone
        self.update_status()
        self.progress.hide()
        self.statusBar().showMessage(f"Opened {session.bundle.name}: {session.n_trials} test trials"
                                     + ("" if session.can_caption else " · captions are off"), 8000)
        self.caption_current_trial()
        if predict and not session.ranks_ready:
            self.passes.predict_all()
        if score_trials and session.can_caption:
            self.passes.score_all()

    # ----------------------------------------------------------------- background work

    def ranks_arrived(self, result) -> None:
        """Every trial's ranks are in (``QtDatasetPasses.predicted``)."""
        if self._shown is not None and self._shown.bundle is result.bundle:
            self._shown.similarity.update(result.similarity)  # a restored bundle shows its ranks at once

    def caption_current_trial(self) -> None:
        """Caption the shown trial in a worker, streamed into its boxes; a caption of a trial no longer shown
        stops within a token (its partial text never reaches the boxes)."""
        session = self.session
        trial = session.trial
        wanted = (session.bundle, trial, session.repeats.source)
        if self.trial_captioner.busy and self._captioning == wanted:
            return  # asked again (the models arrived, the repeat choice reset): the caption is on its way
        if session.can_caption and any(session.caption(s, trial) is None for s in session.stages):
            self._captioning = wanted
            self.trial_captioner.submit_steps(session.iter_caption_trial, trial)
        elif self.trial_captioner.busy:
            self._stop_trial_captions()  # every caption of this trial is in: stop the one nobody looks at

    def _stop_trial_captions(self) -> None:
        self.trial_captioner.cancel()
        self._captioning = None  # the trial asked again later is captioned again

    def worker_failed(self, exc: BaseException) -> None:
        from brainview.decoding.blip2 import (
            DeviceOutOfMemory,  # torch is loaded once a worker decodes
        )

        if isinstance(exc, Cancelled):  # stopped on purpose (another bundle, closing): nothing to report
            return
        if isinstance(exc, DeviceOutOfMemory):
            dialogs.show_notice(self, "Out of GPU memory", f"{exc}\n\nbrainview switches to the CPU.")
            self.set_device("cpu")
            return
        dialogs.show_error(self, "Decoding failed", dialogs.error_text(exc))

    def set_device(self, device: str) -> None:
        """Run the language models on another device (reloaded in a worker)."""
        self.device = device
        self.device_combo.setCurrentIndex(self.device_combo.findData(device))
        for action in self.device_actions.actions():
            action.setChecked(action.data() == device)
        self.update_status()
        if not self.session.has_bundle:
            return
        self.model_loading.load(score_trials=False)

    # ----------------------------------------------------------------- navigation

    def step_trial(self, step: int) -> None:
        """Move to the next/previous trial in the browser's current order."""
        table = self.browser.table
        row = table.currentIndex().row() + step
        if 0 <= row < self.browser.proxy.rowCount():
            table.setCurrentIndex(self.browser.proxy.index(row, 0))

    def _sync_stage(self) -> None:
        self.stage_combo.blockSignals(True)
        self.stage_combo.setCurrentIndex(max(0, self.stage_combo.findData(self.session.stage)))
        self.stage_combo.blockSignals(False)

    def _trial_changed(self) -> None:
        self.caption_current_trial()
        if self.session.synthetic.mode in TRIAL_MODES:
            self._selection_changed()
        self.cortex_shows.update()

    def _vertex_picked(self, hemi: str, vertex: int) -> None:
        self.statusBar().showMessage("Picked " + self.cortex_view.describe_vertex(hemi, vertex), 8000)

    # ----------------------------------------------------------------- selection and live decoding

    def _selection_changed(self) -> None:
        """Any change of the selection or of how it is decoded: decode it again (debounced, in a worker)."""
        session = self.session
        if session.selection is None:
            return
        voxels = session.selection.voxels()
        self.cortex_shows.selection_changed(voxels.size > 0)
        if voxels.size == 0:
            self.live.cancel()
            self.trial_view.set_synthetic(None)
        else:
            settings, trial, k = session.synthetic, session.trial, session.k
            self.live.submit_steps(session.iter_decode_synthetic, voxels, settings, trial, k, session.generation)

    def _show_synthetic(self, result: SyntheticResult) -> None:
        if result.generation != self.session.generation:
            return  # decoded for a bundle no longer shown
        self.trial_view.set_synthetic(result, self.synthetic_label(result))

    def synthetic_label(self, result: SyntheticResult) -> str:
        selection = self.session.selection
        parts = list(selection.atlas_rois)
        if selection.painted_vertices().size:
            parts.append("painted")
        what = " + ".join(parts) if parts else "selection"
        mode = MODE_LABELS[result.settings.mode]
        if result.trial is not None:
            mode += f" of {self.session.trial_id(result.trial)}"
        return f"{mode} · {what} ({result.n_voxels} voxels) · {STAGE_LABELS[result.settings.stage]}"

    # ----------------------------------------------------------------- pictures and closing

    def _screenshot_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "brainview.png", "PNG image (*.png)")
        if path:
            self.grab_with_cortex().save(path, "PNG")

    def grab_with_cortex(self) -> QImage:
        """The window as an image, with the VTK area rendered by VTK (``QWidget.grab`` leaves it black)."""
        if self._cortex_module is None:
            return self.grab().toImage()
        return self._cortex_module.grab_with_cortex(self)

    def open_path(self, path: str | Path) -> None:
        """Open a bundle folder, a study or a session file (command line, drag and drop)."""
        from brainview.analysis.study import is_study
        from brainview.state.session_file import is_session_file

        if is_study(path):
            self.subjects_panel.open_study(path, show_first=True)
        elif is_session_file(path):
            self.session_io.open(path)
        else:
            self.open_bundle(path)

    @staticmethod
    def _dropped_path(event) -> str | None:
        from brainview.state.session_file import is_session_file

        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        paths = [Path(u.toLocalFile()) for u in urls if u.isLocalFile()]
        if len(paths) == 1 and (paths[0].is_dir() or is_session_file(paths[0])):
            return str(paths[0])
        return None

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            self.preferences.restore_splitters()

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._dropped_path(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        path = self._dropped_path(event)
        if path is not None:
            event.acceptProposedAction()
            self.open_path(path)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.preferences.save()
        self._memory_timer.stop()
        self.cortex_shows.stop()
        self._stop_background()  # a caption batch in flight ends at its next token
        self.language_panel.shutdown()
        self.subjects_panel.shutdown(CLOSE_WAIT_MS)
        self.workers.shutdown(CLOSE_WAIT_MS)
        if self.cortex_view is not None:
            self.cortex_view.shutdown()
        super().closeEvent(event)
