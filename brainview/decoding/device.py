"""Device choice shared by everything that runs torch: ``auto`` is CUDA, then MPS, then CPU."""

from __future__ import annotations

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
