"""Long work is a generator that yields progress and returns its result: a worker reports each
step, while a script, a test or another step of the core runs it to its end with :func:`finish`."""

from __future__ import annotations

from collections.abc import Iterator


def finish(steps: Iterator):
    """Run a progress generator (``Session.iter_predictions``...) to its end and return its value."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
