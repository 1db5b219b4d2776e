"""Device choice shared by everything that runs torch: ``auto`` is CUDA, then MPS, then CPU."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from brainview.errors import UserError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} was asked for but no CUDA GPU is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("device 'mps' was asked for but Apple's MPS backend is not available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}") from None


def default_dtype(device: torch.device) -> torch.dtype:
    """Half precision on a GPU, full precision on the CPU."""
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32


class DeviceOutOfMemory(UserError):
    """The accelerator ran out of memory; the app can catch this and retry on the CPU."""

    def __init__(self, device: torch.device | str, what: str):
        self.device = torch.device(device) if not isinstance(device, torch.device) else device
        super().__init__(
            f"the {self.device.type.upper()} device ran out of memory while {what}; "
            "close other programs using it, use a smaller batch size, or choose the CPU (device 'cpu')"
        )


def is_oom(exc: BaseException) -> bool:
    oom_types = tuple(
        t for t in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)) if t
    )
    if oom_types and isinstance(exc, oom_types):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@contextlib.contextmanager
def oom_guard(device: torch.device, what: str) -> Iterator[None]:
    """Turn an accelerator out-of-memory error into :class:`DeviceOutOfMemory`."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised unchanged unless it is an OOM
        if device.type != "cpu" and is_oom(exc):
            with contextlib.suppress(Exception):
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                elif device.type == "mps":
                    torch.mps.empty_cache()
            raise DeviceOutOfMemory(device, what) from exc
        raise
