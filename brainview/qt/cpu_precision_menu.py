"""The Device menu's "CPU precision" choice: what the captioner's language model runs in on a CPU
(:mod:`brainview.decoding.cpu_precision`), remembered in the window's settings; a change reloads the
models when they run on the CPU."""

from __future__ import annotations

from PySide6.QtGui import QAction, QActionGroup

from brainview.decoding.cpu_precision import CPU_PRECISIONS, DEFAULT_CPU_PRECISION

PRECISION_LABELS = {"int8": "CPU precision: int8 (fastest)", "float16": "CPU precision: float16",
                    "float32": "CPU precision: float32 (slowest, exact)"}


def last_cpu_precision(settings) -> str:
    name = settings.value("cpu_precision", DEFAULT_CPU_PRECISION)
    return name if name in CPU_PRECISIONS else DEFAULT_CPU_PRECISION


def add_cpu_precision_actions(window, menu) -> None:
    """Checkable precision items under the device items of ``menu``."""
    menu.addSeparator()
    window.cpu_precision_actions = QActionGroup(window)
    for name in CPU_PRECISIONS:
        action = QAction(PRECISION_LABELS[name], window, checkable=True, checked=name == window.cpu_precision)
        action.setData(name)
        action.triggered.connect(lambda checked=False, name=name: set_cpu_precision(window, name))
        window.cpu_precision_actions.addAction(action)
        menu.addAction(action)


def set_cpu_precision(window, name: str) -> None:
    """Remember ``name`` and reload the language models if they run on the CPU."""
    window.cpu_precision = name
    window.settings.setValue("cpu_precision", name)
    for action in window.cpu_precision_actions.actions():
        action.setChecked(action.data() == name)
    if window.session.has_bundle and window.session.loaded_device == "cpu":
        window.model_loading.load(score_trials=False)
