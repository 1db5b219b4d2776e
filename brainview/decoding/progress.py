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


def time_left(elapsed_s: float, done_since: int, left: int) -> str:
    """"about 3 min left" from the pace of the steps done so far in this phase; "" before any pace is known."""
    if done_since <= 0 or elapsed_s < 1.0 or left <= 0:
        return ""
    seconds = elapsed_s / done_since * left
    if seconds < 60:
        return f"about {max(5, int(round(seconds / 5)) * 5)} s left"
    return f"about {int(round(seconds / 60))} min left"
