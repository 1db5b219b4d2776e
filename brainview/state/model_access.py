"""One language model, several workers: what the user looks at comes first.

The shown trial's caption, an ROI's synthetic caption and a question take the model as *foreground*
(``with access:``, or ``acquire``/``release``); the pass over every trial takes it as *background*
(:meth:`ModelAccess.background`), only while no foreground request waits, and its generation asks
:meth:`ModelAccess.wanted` at every token: a foreground request stops it within a token, and the pass
captions that batch again afterwards. At OPT-2.7B on a CPU a batch of 16 captions holds the model for
a minute; the shown trial's caption no longer waits behind such batches.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from brainview.errors import Cancelled


class ModelAccess:
    def __init__(self):
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._waiting = 0  # foreground requests waiting for the model or holding it

    def wanted(self) -> bool:
        """Whether a foreground request waits for (or holds) the model: the background should yield."""
        return self._waiting > 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the model as foreground (as ``threading.Lock.acquire``)."""
        with self._changed:
            self._waiting += 1
        got = self._lock.acquire(blocking, timeout)
        if not got:
            self._done()
        return got

    def release(self) -> None:
        self._lock.release()
        self._done()

    def _done(self) -> None:
        with self._changed:
            self._waiting -= 1
            self._changed.notify_all()

    def __enter__(self) -> ModelAccess:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    @contextlib.contextmanager
    def background(self) -> Iterator[None]:
        """Hold the model for background work once no foreground request waits."""
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._waiting == 0)
            self._lock.acquire()
            if self._waiting == 0:
                break
            self._lock.release()  # a foreground request came in between: it goes first
        try:
            yield
        finally:
            self._lock.release()
            with self._changed:
                self._changed.notify_all()


def captions_in_background(access: ModelAccess, decoder, tokens, batch_size: int = 16) -> list[str]:
    """``decoder``'s captions of ``tokens`` as background work: a foreground request stops them within a
    token, and they run again once it is done."""
    while True:
        with access.background():
            try:
                return decoder.captions(tokens, batch_size=batch_size, superseded=access.wanted)
            except Cancelled:
                if not access.wanted():
                    raise  # the decoder itself was cancelled (another bundle, closing)
