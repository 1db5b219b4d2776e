"""The one reader for every file a user hands brainview: sessions, studies, label and phrase files,
QA sets, ROI files and the files of a bundle. Each is untrusted: it may be a FIFO (a read would
hang), a device (``/dev/zero`` never ends), a folder, or far larger than any real one.

:func:`read_regular` opens without blocking, checks on the open descriptor that it is a regular
file no larger than the caller's limit, and reads at most that many bytes (a file that grows while
it is read is refused too). :func:`parse_json` bounds JSON by nesting depth and integer length.
Every problem is one :class:`UserFileError` naming the file.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

from brainview.errors import UserError

#: deepest JSON nesting any user file needs (a manifest's provenance is the deepest, a few levels)
MAX_JSON_DEPTH = 64
#: longest integer literal accepted in JSON (int64 has 19 digits)
MAX_INT_DIGITS = 19


class UserFileError(UserError):
    """A user file that cannot be read; the message names the file and the problem."""

    def __init__(self, file: str | None, problem: str):
        self.file = file
        self.problem = problem
        super().__init__(f"{file}: {problem}" if file else problem)


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path: str | Path, max_bytes: int, name: str | None = None) -> bytes:
    """The bytes of the regular file ``path`` (symlinks followed), at most ``max_bytes`` of them.

    A FIFO, device, socket or folder is refused without reading (it is opened non-blocking, so a
    FIFO with no writer does not hang), as is a file larger than ``max_bytes``. ``name`` is how the
    message names the file (default: the path)."""
    shown = str(path) if name is None else name
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise UserFileError(shown, "does not exist") from None
    except IsADirectoryError:
        raise UserFileError(shown, "is a folder, not a file") from None
    except OSError as exc:
        raise UserFileError(shown, f"cannot be opened ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        kind = _kind(info.st_mode)
        if kind is not None:
            raise UserFileError(shown, f"is {kind}, not a regular file")
        if info.st_size > max_bytes:
            raise UserFileError(shown, f"is {info.st_size:,} bytes, more than the {max_bytes:,} such a file may have")
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise UserFileError(shown, f"grew past {max_bytes:,} bytes while it was read")
        return b"".join(chunks)
    except OSError as exc:
        raise UserFileError(shown, f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def read_user_text(path: str | Path, max_bytes: int, name: str | None = None) -> str:
    """:func:`read_regular` decoded as UTF-8 (a byte order mark is dropped)."""
    raw = read_regular(path, max_bytes, name)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserFileError(str(path) if name is None else name,
                            f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_user_json(path: str | Path, max_bytes: int, name: str | None = None) -> Any:
    """:func:`read_user_text` parsed by :func:`parse_json`."""
    return parse_json(read_user_text(path, max_bytes, name), str(path) if name is None else name)


#: folders whose entries are not files (the kernel's, devices): brainview never writes into them
SPECIAL_FOLDERS = ("/proc", "/sys", "/dev")


def check_output_path(path: str | Path) -> Path:
    """A path brainview may write the user's output to, checked before any work: in an existing folder
    that can be written to and is not a kernel or device folder, under a name the file system takes,
    not a folder or a special file. One :class:`UserFileError` naming the path otherwise."""
    path = Path(path).expanduser()
    folder = path.parent.resolve()
    if any(folder == Path(special) or Path(special) in folder.parents for special in SPECIAL_FOLDERS):
        raise UserFileError(str(path), f"brainview does not write into {path.parent} (a system folder)")
    if not folder.is_dir():
        raise UserFileError(str(path), f"the folder {path.parent} does not exist")
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(path.name.encode("utf-8", "surrogateescape")) > limit:
        raise UserFileError(f"{path.name[:40]}…", f"the name is longer than the {limit} bytes this file system allows")
    if path.is_dir():
        raise UserFileError(str(path), "is a folder; name a file")
    if path.exists() and not path.is_file():
        raise UserFileError(str(path), "exists and is not a regular file")
    if not os.access(folder, os.W_OK):
        raise UserFileError(str(path), f"cannot write into {folder} (permission denied)")
    return path


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def parse_json(text: str, what: str) -> Any:
    """``json.loads`` with bounded depth and integer size, and well-formed strings.

    NaN and Infinity are read (Python's json writes them, e.g. a training loss in a provenance);
    each file's schema refuses them wherever a value is used."""
    skeleton = _STRING.sub('""', text)
    opens = np.frombuffer(skeleton.encode("utf-8", "replace"), dtype=np.uint8)
    step = np.isin(opens, (ord("["), ord("{"))).astype(np.int32) - np.isin(opens, (ord("]"), ord("}")))
    if step.size and int(np.cumsum(step).max(initial=0)) > MAX_JSON_DEPTH:
        raise UserFileError(what, f"is nested more than {MAX_JSON_DEPTH} levels deep")

    def integer(literal: str) -> int:
        if len(literal.lstrip("-")) > MAX_INT_DIGITS:
            raise UserFileError(what, f"holds a {len(literal)}-digit integer; brainview's integers fit in 64 bits")
        return int(literal)

    try:
        value = json.loads(text, parse_int=integer)
    except json.JSONDecodeError as exc:
        raise UserFileError(what, f"is not valid JSON ({exc})") from None
    except RecursionError:
        raise UserFileError(what, "is nested too deeply") from None
    if _SURROGATE_ESCAPE.search(text) and not _encodable(value):
        raise UserFileError(what, "holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text")
    return value


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
