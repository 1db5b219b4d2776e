"""Long work is a generator that yields progress and returns its result: a worker reports each
step, while a script, a test or another step of the core runs it to its end with :func:`finish`."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator


def finish(steps: Iterator):
    """Run a progress generator (``Session.iter_predictions``...) to its end and return its value."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def relayed(steps: Iterator, step: Callable):
    """Yield ``step(*progress)`` for each progress a generator yields and return its value: with
    ``value = yield from relayed(...)`` one long job reports as part of a larger one."""
    while True:
        try:
            progress = next(steps)
        except StopIteration as done:
            return done.value
        yield step(*progress)


def time_left(elapsed_s: float, done_since: int, left: int) -> str:
    """"about 3 min left" from the pace of the steps done so far in this phase; "" before any pace is known."""
    if done_since <= 0 or elapsed_s < 1.0 or left <= 0:
        return ""
    return f"{about(elapsed_s / done_since * left)} left"


def about(seconds: float) -> str:
    """"about 40 s", "about 3 min": a duration as rounded as an estimate deserves."""
    if seconds < 60:
        return f"about {max(5, int(round(seconds / 5)) * 5)} s"
    return f"about {int(round(seconds / 60))} min"


def iter_streamed(run: Callable[[Callable[[str], None]], object], poll_s: float = 0.05):
    """Run ``run(on_text)`` (a blocking call that reports text as it goes) on a helper thread and yield
    the newest text as it comes; returns ``run``'s value (its exception is raised here). Lets a progress
    generator stream a caption token by token."""
    texts: queue.SimpleQueue = queue.SimpleQueue()
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = run(texts.put)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="brainview-stream", daemon=True)
    thread.start()
    try:
        while thread.is_alive() or not texts.empty():
            try:
                text = texts.get(timeout=poll_s)
            except queue.Empty:
                continue
            while not texts.empty():  # only the newest: a slow reader skips to it
                text = texts.get()
            yield text
    finally:
        thread.join()  # closed early too: the caller's lock on the model is not released under a running call
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
