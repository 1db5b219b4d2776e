"""A question box: ask the language model about a pattern, keep a short dialogue, never block.

The owner gives a *job maker* (:meth:`QtQuestionBox.set_asker`): called on the GUI thread with
the question and the dialogue so far per source, it captures what it needs (the trial, the
stage, the selection) and returns the function that the worker runs, called with ``superseded``
(True once the box was cleared: it may stop); that function returns one answer per source (e.g.
``{"brain": ..., "image": ...}``), or, as a generator, yields the answers so far after each token
(they stream into the dialogue, marked as partial) and returns them. A cleared box ignores
answers that were still on their way.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QSizePolicy,
                               QVBoxLayout)

from brainview.decoding.questions import MAX_HISTORY_TURNS, Turn
from brainview.errors import Cancelled
from brainview.qt.workers import QtWorkers

JobMaker = Callable[[str, dict[str, list[Turn]]], Callable[..., dict[str, str]]]


class QtQuestionBox(QFrame):
    """Line edit + Ask, a thinking indicator, and the dialogue (one answer per source and turn)."""

    answered = Signal(dict)  # {source: answer} of the newest question
    streamed = Signal(dict)  # {source: answer so far} while the newest question is answered, token by token
    failed = Signal(str)

    def __init__(self, title: str, sources: dict[str, str], placeholder: str = "Ask a question…",
                 max_turns: int = MAX_HISTORY_TURNS, parent=None):
        """``sources``: answer key -> label shown before its answer (e.g. {"brain": "brain"})."""
        super().__init__(parent)
        self.setObjectName("card")
        self.sources = dict(sources)
        self.max_turns = max_turns
        self.history: list[tuple[str, dict[str, str]]] = []
        self.workers: QtWorkers | None = None
        self._asker: JobMaker | None = None
        self._generation = 0
        self._busy = False
        self._so_far: tuple[str, dict[str, str]] | None = None  # the question being answered, answers so far

        self.title = QLabel(title)
        self.title.setStyleSheet("font-weight: 600;")
        self.edit = QLineEdit(placeholderText=placeholder, clearButtonEnabled=True)
        self.edit.returnPressed.connect(self.ask)
        self.button = QPushButton("Ask")
        self.button.clicked.connect(self.ask)
        self.thinking = QProgressBar(maximumHeight=6, textVisible=False, minimum=0, maximum=0)
        self.thinking.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.thinking.hide()
        self.status = QLabel(wordWrap=True)
        self.status.setObjectName("muted")
        self.dialogue = QLabel(wordWrap=True, textInteractionFlags=Qt.TextSelectableByMouse, textFormat=Qt.RichText)
        self.dialogue.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Minimum)
        row = QHBoxLayout()
        row.addWidget(self.edit, 1)
        row.addWidget(self.button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addLayout(row)
        layout.addWidget(self.thinking)
        layout.addWidget(self.dialogue)
        layout.addWidget(self.status)
        self.set_asker(None, "no bundle is open")

    # ----------------------------------------------------------------- state

    def set_asker(self, asker: JobMaker | None, reason: str = "") -> None:
        """Enable asking with ``asker``, or disable the box and show why (``reason``)."""
        self._asker = asker
        self._update_enabled()
        self.status.setText("" if asker is not None else f"Questions are off: {reason}.")
        self.status.setVisible(asker is None)

    def clear(self) -> None:
        """Forget the dialogue (a new trial or selection); an answer still on its way is dropped."""
        self._generation += 1
        self.history.clear()
        self._so_far = None
        self._set_busy(False)
        self._show_dialogue()

    @property
    def busy(self) -> bool:
        return self._busy

    def histories(self) -> dict[str, list[Turn]]:
        """The dialogue so far as turns per source (the last ``max_turns``)."""
        turns = self.history[-self.max_turns:] if self.max_turns > 0 else []
        return {s: [Turn(q, a[s]) for q, a in turns if s in a] for s in self.sources}

    # ----------------------------------------------------------------- asking

    def ask(self, question: str | None = None) -> None:
        """Ask ``question`` (default: the line edit's text) in a worker."""
        text = " ".join((self.edit.text() if question is None or isinstance(question, bool) else question).split())
        if not text or self._busy or self._asker is None or self.workers is None:
            return
        job = self._asker(text, self.histories())
        generation = self._generation
        self._set_busy(True)
        self.workers.start(job, superseded=lambda: generation != self._generation,
                           on_yielded=lambda answers: self._streamed(generation, text, answers),
                           on_returned=lambda answers: self._answered(generation, text, answers),
                           on_error=lambda exc: self._failed(generation, exc))

    def _streamed(self, generation: int, question: str, answers: dict[str, str]) -> None:
        if generation != self._generation:
            return
        self._so_far = (question, dict(answers))
        self._show_dialogue()
        self.streamed.emit(dict(answers))

    def _answered(self, generation: int, question: str, answers: dict[str, str] | None) -> None:
        if generation != self._generation or answers is None:
            return
        self._so_far = None
        self._set_busy(False)
        self.history.append((question, dict(answers)))
        del self.history[:-max(1, self.max_turns)]
        self.edit.clear()
        self._show_dialogue()
        self.answered.emit(dict(answers))

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self._so_far = None
        self._set_busy(False)
        self._show_dialogue()
        if isinstance(exc, Cancelled):  # stopped on purpose: nothing went wrong
            self.status.hide()
            return
        self.status.setText(f"Could not answer: {exc}")
        self.status.show()
        self.failed.emit(str(exc))

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.thinking.setVisible(busy)
        self.button.setText("Thinking…" if busy else "Ask")
        self._update_enabled()

    def _update_enabled(self) -> None:
        ready = self._asker is not None and not self._busy
        self.edit.setEnabled(self._asker is not None)
        self.button.setEnabled(ready)

    def _show_dialogue(self) -> None:
        from html import escape

        rows = []
        for question, answers in self.history:
            said = "  ·  ".join(f"<span style='color:#8a8f98'>{escape(self.sources[s])}:</span> "
                                f"<b>{escape(a) or '(no answer)'}</b>" for s, a in answers.items() if s in self.sources)
            rows.append(f"Q: {escape(question)}<br>&nbsp;&nbsp;{said}")
        if self._so_far is not None:  # being answered: what is there so far, and that more is coming
            question, answers = self._so_far
            said = "  ·  ".join(f"<span style='color:#8a8f98'>{escape(label)}:</span> "
                                f"<i>{escape(answers.get(s, ''))}…</i>" for s, label in self.sources.items())
            rows.append(f"Q: {escape(question)}<br>&nbsp;&nbsp;{said}")
        self.dialogue.setText("<br>".join(rows))
        self.dialogue.setVisible(bool(rows))
        if rows:
            self.status.hide()
