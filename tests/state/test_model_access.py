"""The pass over every trial gives the language model up within a token to what the user looks at."""

from __future__ import annotations

import threading
import time

import pytest

from brainview.errors import Cancelled
from brainview.state.model_access import ModelAccess, captions_in_background


class SlowDecoder:
    """Captions token by token (10 ms each), asking ``superseded`` at every token as generation does."""

    def __init__(self, tokens_per_caption: int = 30):
        self.tokens_per_caption = tokens_per_caption
        self.started = threading.Event()
        self.attempts = 0

    def captions(self, tokens, batch_size=16, superseded=None):
        self.attempts += 1
        self.started.set()
        for _ in range(self.tokens_per_caption):
            if superseded is not None and superseded():
                raise Cancelled("superseded")
            time.sleep(0.01)
        return [f"caption {t}" for t in tokens]


def test_a_foreground_caption_stops_the_background_batch_within_a_token_and_the_batch_runs_again():
    access, decoder, out = ModelAccess(), SlowDecoder(), []
    background = threading.Thread(target=lambda: out.extend(captions_in_background(access, decoder, [1, 2, 3])))
    background.start()
    assert decoder.started.wait(5)
    start = time.perf_counter()
    with access:  # the shown trial's caption
        waited = time.perf_counter() - start
        time.sleep(0.05)
    background.join(10)
    assert waited < 0.1  # a token (10 ms) and some scheduling, not the batch's 300 ms
    assert decoder.attempts == 2 and out == ["caption 1", "caption 2", "caption 3"]


def test_background_work_waits_while_a_foreground_request_holds_the_model():
    access, order = ModelAccess(), []

    def background():
        with access.background():
            order.append("background")

    access.acquire()
    worker = threading.Thread(target=background)
    worker.start()
    time.sleep(0.05)
    order.append("foreground done")
    access.release()
    worker.join(5)
    assert order == ["foreground done", "background"]


def test_a_cancelled_decoder_still_stops_the_background_pass():
    class Cancelling:
        def captions(self, tokens, batch_size=16, superseded=None):
            raise Cancelled("the window closes")

    with pytest.raises(Cancelled):
        captions_in_background(ModelAccess(), Cancelling(), [1])
