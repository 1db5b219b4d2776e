"""Long work off the GUI thread: superqt thread workers, tracked so a closing window can wait for them,
and :class:`QtLatestRunner`, which runs only the newest of rapidly repeated requests (live decoding).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal
from superqt.utils import WorkerBase, create_worker


class QtWorkers(QObject):
    """Starts workers and remembers the running ones, so :meth:`shutdown` can stop and wait for them.

    ``pool``: where they run (default Qt's global pool); a part whose work must not hold up the window's
    (the subjects panel) brings its own one-thread pool.
    """

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None):
        super().__init__(parent)
        self._running: set[WorkerBase] = set()
        self._closed = False
        self.pool = pool or QThreadPool.globalInstance()

    def start(self, func: Callable, *args, on_returned: Callable | None = None,
              on_error: Callable[[BaseException], None] | None = None, on_yielded: Callable | None = None,
              on_finished: Callable | None = None, **kwargs) -> WorkerBase | None:
        """Run ``func(*args, **kwargs)`` in the global thread pool; a generator function yields progress
        (``on_yielded``; a plain function has none to report).

        The callbacks run on the GUI thread, and never after :meth:`shutdown` (their widgets may be
        gone); after it nothing starts and None is returned.
        """
        if self._closed:
            return None
        worker = create_worker(func, *args, _start_thread=False, _ignore_errors=True, **kwargs)
        for signal, callback in ((worker.returned, on_returned), (worker.errored, on_error),
                                 (getattr(worker, "yielded", None), on_yielded), (worker.finished, on_finished)):
            if callback is not None and signal is not None:
                signal.connect(self._unless_closed(callback))
        worker.finished.connect(self._unless_closed(lambda: self._done(worker)))
        self._running.add(worker)
        if len(self._running) == 1:
            self.busy_changed.emit(True)
        # straight into the pool: superqt's own start() defers by a timer tick, and a worker queued
        # that way can slip past shutdown() and run after the window is gone
        self.pool.start(worker)
        return worker

    @property
    def busy(self) -> bool:
        """Whether a started worker has not finished yet."""
        return bool(self._running)

    def _unless_closed(self, callback: Callable) -> Callable:
        return lambda *args: None if self._closed else callback(*args)

    def _done(self, worker: WorkerBase) -> None:
        self._running.discard(worker)
        if not self._running:
            self.busy_changed.emit(False)

    def shutdown(self, msecs: int = 30000) -> bool:
        """Ask every worker to stop (generators stop at their next yield) and wait for the pool.

        Results that arrive afterwards are ignored.
        """
        self._closed = True
        for worker in list(self._running):
            worker.quit()
        return self.pool.waitForDone(msecs)


class QtLatestRunner(QObject):
    """One request at a time, newest wins: what live decoding needs.

    Each :meth:`submit` replaces the pending request. When nothing runs, it starts at once;
    otherwise it waits for the running one, and requests that arrive
    meanwhile are merged into the newest after ``delay_ms`` (a brush stroke's dabs). A result is
    emitted only if no newer request came in meanwhile (a generation counter); older results are
    dropped and counted in :attr:`dropped`.

    :meth:`submit_steps` takes a generator function with a ``superseded`` keyword: what it yields
    is emitted as :attr:`partial` (retrievals before the caption), its return value as
    :attr:`result` (None: it gave up, superseded). Once it has yielded, a newer request no longer
    waits for it: the slow remainder (a caption) must check ``superseded()`` and give up.
    """

    started = Signal()
    partial = Signal(object)
    result = Signal(object)
    failed = Signal(object)
    idle = Signal()

    def __init__(self, workers: QtWorkers, delay_ms: int = 150, parent: QObject | None = None):
        super().__init__(parent)
        self.workers = workers
        self.generation = 0
        self.dropped = 0
        self._pending: tuple[int, Callable, tuple, bool] | None = None
        self._running: set[int] = set()  # generations of running workers
        self._blocking: set[int] = set()  # ... of those a new request waits for
        self._delay = delay_ms
        self._timer = QTimer(self, singleShot=True, interval=delay_ms)
        self._timer.timeout.connect(self._launch)

    @property
    def busy(self) -> bool:
        return bool(self._running) or self._pending is not None

    def submit(self, func: Callable, *args) -> None:
        self._submit(func, args, False)

    def submit_steps(self, func: Callable, *args) -> None:
        self._submit(func, args, True)

    def _submit(self, func: Callable, args: tuple, steps: bool) -> None:
        self.generation += 1
        self._pending = (self.generation, func, args, steps)
        if self._blocking:
            self._timer.start()  # merged into the newest after the delay (a brush stroke's dabs)
        else:
            self._launch()  # at once: before the repaint this change triggers, which can take longer

    def superseded(self, generation: int) -> bool:
        """Whether a newer request (or a cancel) came after ``generation``; safe from any thread."""
        return generation != self.generation

    def cancel(self) -> None:
        """Forget the pending request and drop the running one's result."""
        self.generation += 1
        self._pending = None
        self._timer.stop()

    def _launch(self) -> None:
        if self._blocking or self._pending is None:
            return
        generation, func, args, steps = self._pending
        self._pending = None
        self._running.add(generation)
        self._blocking.add(generation)
        self.started.emit()
        kwargs = {}
        if steps:
            kwargs = dict(superseded=lambda: self.superseded(generation),
                          on_yielded=lambda value: self._partial(generation, value))
        self.workers.start(func, *args, on_returned=lambda value: self._deliver(generation, self.result, value),
                           on_error=lambda exc: self._deliver(generation, self.failed, exc),
                           on_finished=lambda: self._finished(generation), **kwargs)

    def _partial(self, generation: int, value) -> None:
        self._deliver(generation, self.partial, value)
        self._unblock(generation)

    def _unblock(self, generation: int) -> None:
        self._blocking.discard(generation)
        if self._pending is not None and not self._timer.isActive():
            self._launch()

    def _deliver(self, generation: int, signal, value) -> None:
        if generation == self.generation and value is not None:
            signal.emit(value)
        elif generation != self.generation:
            self.dropped += 1

    def _finished(self, generation: int) -> None:
        self._running.discard(generation)
        self._unblock(generation)
        if not self._running and self._pending is None:
            self.idle.emit()
