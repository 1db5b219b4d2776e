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
        """Run ``func(*args, **kwargs)`` in the global thread pool; a generator function yields progress.

        The callbacks run on the GUI thread, and never after :meth:`shutdown` (their widgets may be
        gone); after it nothing starts and None is returned.
        """
        if self._closed:
            return None
        worker = create_worker(func, *args, _start_thread=False, _ignore_errors=True, **kwargs)
        for signal, callback in ((worker.returned, on_returned), (worker.errored, on_error),
                                 (getattr(worker, "yielded", None), on_yielded), (worker.finished, on_finished)):
            if callback is not None:
                signal.connect(self._unless_closed(callback))
        worker.finished.connect(self._unless_closed(lambda: self._done(worker)))
        self._running.add(worker)
        if len(self._running) == 1:
            self.busy_changed.emit(True)
        # straight into the pool: superqt's own start() defers by a timer tick, and a worker queued
        # that way can slip past shutdown() and run after the window is gone
        self.pool.start(worker)
        return worker

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
    """Debounced, one call at a time, newest wins: what live decoding needs.

    Each :meth:`submit` replaces the pending request and restarts the debounce timer. When the
    timer fires and no call is running, the pending request runs in a worker; otherwise it waits
    for the running one. A result is emitted only if no newer request came in meanwhile (a
    generation counter); older results are dropped and counted in :attr:`dropped`.
    """

    started = Signal()
    result = Signal(object)
    failed = Signal(object)
    idle = Signal()

    def __init__(self, workers: QtWorkers, delay_ms: int = 150, parent: QObject | None = None):
        super().__init__(parent)
        self.workers = workers
        self.generation = 0
        self.dropped = 0
        self._pending: tuple[int, Callable, tuple] | None = None
        self._running = False
        self._timer = QTimer(self, singleShot=True, interval=delay_ms)
        self._timer.timeout.connect(self._launch)

    @property
    def busy(self) -> bool:
        return self._running or self._pending is not None

    def submit(self, func: Callable, *args) -> None:
        self.generation += 1
        self._pending = (self.generation, func, args)
        self._timer.start()

    def cancel(self) -> None:
        """Forget the pending request and drop the running one's result."""
        self.generation += 1
        self._pending = None
        self._timer.stop()

    def _launch(self) -> None:
        if self._running or self._pending is None:
            return
        generation, func, args = self._pending
        self._pending = None
        self._running = True
        self.started.emit()
        self.workers.start(func, *args, on_returned=lambda value: self._deliver(generation, self.result, value),
                           on_error=lambda exc: self._deliver(generation, self.failed, exc),
                           on_finished=self._finished)

    def _deliver(self, generation: int, signal, value) -> None:
        if generation == self.generation:
            signal.emit(value)
        else:
            self.dropped += 1

    def _finished(self) -> None:
        self._running = False
        if self._pending is not None:
            if not self._timer.isActive():
                self._launch()
        else:
            self.idle.emit()
