"""The main window's toolbar, menus and status bar, built apart and wired to the window's slots, so the
window itself keeps only the controller logic between the session and the widgets."""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QProgressBar, QToolBar

from brainview.paths import demo_bundle_path
from brainview.qt.cpu_precision_menu import add_cpu_precision_actions
from brainview.qt.exports import QtExports
from brainview.qt.help import add_help_menu
from brainview.qt.session_io import QtSessionIO
from brainview.state.session import DEVICES

DEVICE_LABELS = {"auto": "Auto", "cpu": "CPU", "cuda": "CUDA"}


def memory_text(device: str) -> str:
    """Process resident memory, plus CUDA memory in use when the models run on a GPU."""
    rss = None
    try:
        with open("/proc/self/statm") as statm:
            rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        try:
            import resource

            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        except (ImportError, OSError):
            pass
    text = f"RAM {rss / 2**30:.2f} GiB" if rss is not None else "RAM ?"
    torch = sys.modules.get("torch")
    if device.startswith("cuda") and torch is not None and torch.cuda.is_available():
        text += f" · GPU {torch.cuda.memory_allocated() / 2**30:.2f} GiB"
    return text


def build_toolbar(window) -> None:
    """Stage, cortex overlay and device choosers, and the demo-study button."""
    bar = QToolBar("Main", movable=False)
    bar.setObjectName("main_toolbar")
    window.addToolBar(bar)
    window.stage_combo = QComboBox(toolTip="Stage shown for the trial: decoded tokens, retrievals and scores")
    window.stage_combo.currentIndexChanged.connect(
        lambda: window.stage_combo.currentData() and window.session.set_stage(window.stage_combo.currentData()))
    window.device_combo = QComboBox(toolTip="Where the language models run; changing it reloads them")
    for name in DEVICES:
        window.device_combo.addItem(DEVICE_LABELS[name], name)
    window.device_combo.setCurrentIndex(window.device_combo.findData(window.device))
    window.device_combo.activated.connect(lambda: window.set_device(window.device_combo.currentData()))
    for label, widget in (("Stage", window.stage_combo), ("Cortex shows", window.cortex_shows.combo),
                          ("Device", window.device_combo)):
        bar.addWidget(QLabel(f"  {label} "))
        bar.addWidget(widget)
    bar.addSeparator()
    demo_study = bar.addAction("Demo study")
    demo_study.setToolTip("The demo as a study of four virtual subjects: every subject's captions and ranks for "
                          "this stimulus, the ROI table across subjects (the other three are built once)")
    demo_study.triggered.connect(lambda: (window.subjects_dock.show(), window.subjects_panel.open_demo_study()))
    bar.addSeparator()
    bar.addActions([window.edit_actions.undo, window.edit_actions.redo])

def build_menus(window) -> None:
    """File, Edit, View, Device and Help menus."""
    menu = window.menuBar().addMenu("&File")
    open_action = QAction("&Open bundle…", window, shortcut=QKeySequence.Open)
    open_action.triggered.connect(window.choose_bundle)
    menu.addAction(open_action)
    window.recent_menu = menu.addMenu("Open &recent")

    def fill_recent() -> None:
        window.recent_menu.clear()
        for path in window.recent_bundles():
            action = window.recent_menu.addAction(path)
            action.triggered.connect(lambda checked=False, path=path: window.open_path(path))  # a session too
        if window.recent_menu.isEmpty():
            window.recent_menu.addAction("(none yet)").setEnabled(False)

    window.recent_menu.aboutToShow.connect(fill_recent)
    demo_action = QAction("Open the &demo bundle", window)
    demo_action.triggered.connect(lambda: window.open_bundle(demo_bundle_path()))
    menu.addAction(demo_action)
    study_action = QAction("Open s&tudy…", window)
    study_action.triggered.connect(window.subjects_panel.choose_study)
    menu.addAction(study_action)
    demo_study_action = QAction("Open the demo s&tudy (four virtual subjects)", window)
    demo_study_action.triggered.connect(window.subjects_panel.open_demo_study)
    menu.addAction(demo_study_action)
    captions_action = QAction("Add &model captions…", window)
    captions_action.triggered.connect(window.other_models.choose_file)
    menu.addAction(captions_action)
    menu.addSeparator()
    shot_action = QAction("Save &screenshot…", window)
    shot_action.triggered.connect(window._screenshot_dialog)
    menu.addAction(shot_action)
    window.exports = QtExports(window)
    window.exports.add_to(menu)
    menu.addSeparator()
    window.session_io = QtSessionIO(window)
    window.session_io.add_to(menu)
    menu.addSeparator()
    quit_action = QAction("&Quit", window, shortcut=QKeySequence.Quit)
    quit_action.triggered.connect(window.close)
    menu.addAction(quit_action)

    edit = window.menuBar().addMenu("&Edit")
    edit.addActions([window.edit_actions.undo, window.edit_actions.redo])

    view = window.menuBar().addMenu("&View")
    for text, keys, step in (("&Next trial", "Ctrl+Down", 1), ("&Previous trial", "Ctrl+Up", -1)):
        action = QAction(text, window, shortcut=QKeySequence(keys))
        action.triggered.connect(lambda checked=False, step=step: window.step_trial(step))
        view.addAction(action)
    worst = QAction("&Worst trial first", window, shortcut=QKeySequence("Ctrl+Shift+W"))
    worst.triggered.connect(window.browser.worst_first)
    view.addAction(worst)
    view.addAction(window.subjects_dock.toggleViewAction())
    view.addAction(window.preferred_dock.toggleViewAction())
    if window.edit_actions.cortex:
        view.addSection("Cortex")
        view.addActions(window.edit_actions.cortex)

    device_menu = window.menuBar().addMenu("&Device")
    window.device_actions = QActionGroup(window)
    for name in DEVICES:
        action = QAction(DEVICE_LABELS[name], window, checkable=True, checked=name == window.device)
        action.setData(name)
        action.triggered.connect(lambda checked=False, name=name: window.set_device(name))
        window.device_actions.addAction(action)
        device_menu.addAction(action)
    add_cpu_precision_actions(window, device_menu)
    add_help_menu(window)

def build_status_bar(window) -> None:
    """Progress, device and memory at the right of the status bar, the memory refreshed every 2 s."""
    bar = window.statusBar()
    window.progress = QProgressBar(minimumWidth=260, maximumWidth=380, textVisible=True)
    window.progress.hide()
    window.device_label = QLabel()
    window.memory_label = QLabel()
    for widget in (window.progress, window.device_label, window.memory_label):
        bar.addPermanentWidget(widget)
    window._memory_timer = QTimer(window, interval=2000)
    window._memory_timer.timeout.connect(window.update_status)
    window._memory_timer.start()
    window.update_status()
