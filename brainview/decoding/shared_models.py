"""Language models loaded once per process. The window, the subjects panel and a bundle opened again
name the same captioner files (or model id): they share one loaded adapter, kept while any decoder
holds it, so NSD's OPT-2.7B (5.4 GB in half precision) is never in memory twice."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from pathlib import Path

_loaded: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_lock = threading.Lock()


def model_identity(reference: str) -> tuple:
    """A model folder's files by identity and version (device, inode, size, mtime: hard links are one
    file, a file rewritten in place is another), or the model id."""
    folder = Path(reference)
    if not folder.is_dir():
        return ("id", reference)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return ("files",) + tuple((p.relative_to(folder).as_posix(), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
                              for p in files for st in [p.stat()])


def shared(key: tuple, load: Callable[[], object]):
    """The model loaded for ``key``, or what ``load()`` returns, kept for the next asker while anyone
    holds it. One load at a time: a second asker for the same model waits for the first and shares it."""
    with _lock:
        model = _loaded.get(key)
        if model is None:
            model = load()
            _loaded[key] = model
        return model
