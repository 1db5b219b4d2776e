"""A session without a window, for the command line, figure export and scripts."""

from __future__ import annotations

from brainview.state.session import Session, load


def headless_session(path: str, device: str = "auto", captions: bool = True, cpu_precision: str | None = None):
    """A :class:`~brainview.state.session.Session` on a bundle, without a window."""
    session = Session()
    session.set_loaded(load(path, device=device, load_language_models=captions, cpu_precision=cpu_precision))
    return session
