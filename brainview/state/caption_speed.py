"""What captioning costs on this machine's CPU, said before a large captioner is loaded: the load
time and seconds per caption measured when it was last loaded here (remembered in
``$XDG_CACHE_HOME/brainview/cpu_speed.json``), else estimated from the memory bandwidth measured now
(a caption token reads every weight once)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from brainview.cortex.roi_io import write_atomic


def speed_file() -> Path:
    """Where measurements are kept (``BRAINVIEW_SPEED_FILE`` overrides it)."""
    if os.environ.get("BRAINVIEW_SPEED_FILE"):
        return Path(os.environ["BRAINVIEW_SPEED_FILE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "brainview" / "cpu_speed.json"


@dataclass
class CaptionSpeed:
    """Seconds per generated token (and to load, when known), and where the figures come from."""

    token_seconds: float
    load_seconds: float | None
    source: str


def _read() -> dict:
    try:
        data = json.loads(speed_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _key(model: str, precision: str) -> str:
    return f"{precision} {model}"


def remember(model: str, precision: str, token_seconds: float, load_seconds: float) -> None:
    """Keep a measurement of ``model`` (its folder or id) in ``precision`` for the next question."""
    data = _read()
    data[_key(model, precision)] = {"token_seconds": float(token_seconds), "load_seconds": float(load_seconds)}
    write_atomic(speed_file(), json.dumps(data, indent=1).encode("utf-8"))


def recall(model: str, precision: str) -> CaptionSpeed | None:
    """The last measurement of ``model`` in ``precision`` on this machine, if any."""
    entry = _read().get(_key(model, precision))
    try:
        return CaptionSpeed(float(entry["token_seconds"]), float(entry["load_seconds"]),
                            "measured when it was last loaded here")
    except (TypeError, KeyError, ValueError):
        return None


def expected_speed(model: str, parameters: int, precision: str) -> CaptionSpeed:
    """The remembered measurement, else an estimate from the memory bandwidth measured now. Imports torch."""
    from brainview.decoding.cpu_precision import estimate_token_seconds, measure_read_bandwidth

    known = recall(model, precision)
    if known is not None:
        return known
    bandwidth = measure_read_bandwidth()
    return CaptionSpeed(estimate_token_seconds(parameters, precision, bandwidth), None,
                        f"estimated from this machine's memory bandwidth ({bandwidth / 1e9:.0f} GB/s)")
