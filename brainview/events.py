"""Plain-callback events for the Qt-free models (the session, its language tools): the views connect,
a setter emits, and scripts and tests subscribe the same way, with no Qt in between."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable


class Observable:
    """A model whose changes are announced: ``callback(model)`` after each of its :attr:`EVENTS`."""

    EVENTS: tuple[str, ...] = ()
    KIND = "model"  # what the model is, for the message about an unknown event

    def __init__(self):
        self._listeners: dict[str, list[Callable]] = defaultdict(list)

    def connect(self, event: str, callback: Callable) -> None:
        """Call ``callback(model)`` after ``event`` (one of :attr:`EVENTS`)."""
        if event not in self.EVENTS:
            raise ValueError(f"unknown {self.KIND} event {event!r}; choose from {self.EVENTS}")
        self._listeners[event].append(callback)

    def disconnect(self, event: str, callback: Callable) -> None:
        self._listeners[event].remove(callback)

    def _emit(self, event: str) -> None:
        for callback in list(self._listeners[event]):
            callback(self)
