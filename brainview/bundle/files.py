"""The one place that reads bytes from a bundle (a bundle is untrusted data).

Every read goes through :class:`BundleFiles`, which

* resolves a bundle-relative name to a regular file *inside* the bundle (a symlink, or a folder
  linked out of it, is refused: a bundle must not make brainview read a foreign file);
* reads headers before data and compares the sizes they announce with what the caller expects
  (from the manifest) and with the file's real size *before* allocating anything;
* memory-maps ``.npy`` arrays and safetensors tensors in their stored dtype, reads an ``.npz``
  member only when asked for it, and bounds JSON by size, nesting depth and number length;
* turns any exception raised while parsing a file into one :class:`BundleError` naming the file
  (:meth:`BundleFiles.reading`), so a damaged file is a message, never a traceback.
"""

from __future__ import annotations

import ast
import contextlib
import math
import os
import re
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from brainview.bundle.user_files import UserFileError, parse_json, read_regular

MAX_NPY_HEADER = 16 * 1024
MAX_SAFETENSORS_HEADER = 64 * 2**20
#: safetensors dtypes a brain model may store; bf16 and float8 have no numpy dtype
SAFETENSORS_DTYPES = {"F16": np.dtype("<f2"), "F32": np.dtype("<f4")}


class BundleError(UserFileError):
    """A bundle that cannot be opened; the message names the file and the problem."""


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (fully resolved, symlinks followed) lies in the folder ``root`` (resolved)."""
    try:
        path.resolve(strict=True).relative_to(root)
    except (OSError, ValueError, RuntimeError):
        return False
    return True


class BundleFiles:
    """Bounded, contained readers for the files of the bundle folder ``root``."""

    def __init__(self, root: Path):
        self.root = root
        self.real_root = root.resolve()

    @contextlib.contextmanager
    def reading(self, rel: str) -> Iterator[None]:
        """Any failure while parsing ``rel`` becomes one :class:`BundleError` naming it."""
        try:
            yield
        except BundleError:
            raise
        except UserFileError as exc:  # the shared reader's message, for the bundle's file
            raise BundleError(rel, exc.problem) from None
        except MemoryError:
            raise BundleError(rel, "announces more data than this machine can hold") from None
        except RecursionError:
            raise BundleError(rel, "is nested too deeply") from None
        except Exception as exc:  # noqa: BLE001 - a damaged file can make any parser raise anything
            raise BundleError(rel, f"cannot be read ({_short(exc)})") from None

    def path(self, rel: str) -> Path:
        """The regular file ``rel``, checked to be inside the bundle; raises if absent or linked out."""
        path = self.root / rel
        if not path.exists() and not path.is_symlink():
            raise BundleError(rel, f"missing from the bundle at {self.root}")
        if not inside(path, self.real_root):
            raise BundleError(rel, "points outside the bundle (a symbolic link); a bundle must contain its files")
        if not path.is_file():
            raise BundleError(rel, "is not a regular file")
        return path

    # ------------------------------------------------------------------ JSON

    def json(self, rel: str, max_bytes: int) -> Any:
        """Parse a JSON file no larger than ``max_bytes``, nested at most :data:`MAX_JSON_DEPTH` deep,
        with integers of at most :data:`MAX_INT_DIGITS` digits and finite numbers only."""
        path = self.path(rel)
        with self.reading(rel):
            raw = read_regular(path, max_bytes, rel)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BundleError(rel, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
            return parse_json(text, rel)

    # ------------------------------------------------------------------ .npy

    def npy(self, rel: str, shape: tuple[int | None, ...], dtypes: tuple[str, ...],
            limits: dict[int, int] | None = None, names: tuple[str, ...] | None = None) -> np.ndarray:
        """Memory-map ``rel`` after checking its header: ``shape`` with None for a free axis (bounded by
        ``limits[axis]``), dtype one of ``dtypes``, and a file size that matches the header exactly."""
        path = self.path(rel)
        with self.reading(rel):
            with open(path, "rb") as handle:
                descr, fortran, found, offset = _npy_header(handle, rel)
            dtype = _npy_dtype(descr, dtypes, rel)
            _check_shape(found, shape, limits or {}, rel, names=names)
            nbytes = math.prod(found) * dtype.itemsize
            size = path.stat().st_size
            if size != offset + nbytes:
                raise BundleError(rel, f"holds {size - offset:,} bytes of data but its header announces "
                                       f"{nbytes:,} (shape {found}, {dtype.name}): the file is damaged")
            if nbytes == 0:
                return np.zeros(found, dtype=dtype)
            return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=found, order="F" if fortran else "C")

    # ------------------------------------------------------------------ .npz

    def npz(self, rel: str) -> "NpzArchive":
        path = self.path(rel)
        with self.reading(rel):
            return NpzArchive(zipfile.ZipFile(path), rel, self)

    # ------------------------------------------------------------------ safetensors

    def safetensors(self, rel: str, expected: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        """Memory-map the tensors named in ``expected`` (name -> shape) from a safetensors file, after
        checking the header: dtype float16/float32, shape as expected, data inside the file."""
        path = self.path(rel)
        with self.reading(rel):
            size = path.stat().st_size
            with open(path, "rb") as handle:
                head = handle.read(8)
                if len(head) < 8:
                    raise BundleError(rel, "is too short to be a safetensors file")
                (n,) = struct.unpack("<Q", head)
                if n > min(MAX_SAFETENSORS_HEADER, size - 8):
                    raise BundleError(rel, f"announces a {n:,}-byte header in a {size:,}-byte file: "
                                           "not a safetensors file, or a damaged one")
                header = parse_json(handle.read(n).decode("utf-8"), rel)
            if not isinstance(header, dict):
                raise BundleError(rel, "has a header that is not a JSON object")
            data_start, data_size = 8 + n, size - 8 - n
            out = {}
            for name, shape in expected.items():
                spec = header.get(name)
                if spec is None:
                    raise BundleError(rel, f'missing tensor "{name}"')
                ok = (isinstance(spec, dict) and isinstance(spec.get("dtype"), str)
                      and isinstance(spec.get("shape"), list) and isinstance(spec.get("data_offsets"), list)
                      and len(spec["data_offsets"]) == 2
                      and all(_is_int(v) and v >= 0 for v in spec["shape"] + spec["data_offsets"]))
                if not ok:
                    raise BundleError(rel, f'tensor "{name}" has a malformed header entry')
                dtype = SAFETENSORS_DTYPES.get(spec["dtype"])
                if dtype is None:
                    raise BundleError(rel, f'tensor "{name}" is {spec["dtype"]}; brain models are stored as '
                                           f"{' or '.join(SAFETENSORS_DTYPES)}")
                if tuple(spec["shape"]) != shape:
                    raise BundleError(rel, f'tensor "{name}" has shape {tuple(spec["shape"])}, expected {shape}')
                begin, end = spec["data_offsets"]
                if end - begin != math.prod(shape) * dtype.itemsize or end > data_size:
                    raise BundleError(rel, f'tensor "{name}" announces data outside the file or of the wrong size')
                out[name] = np.memmap(path, dtype=dtype, mode="r", offset=data_start + begin, shape=shape) \
                    if end > begin else np.zeros(shape, dtype=dtype)
            return out


class NpzArchive:
    """An ``.npz`` read member by member: headers first, data only for the members asked for."""

    def __init__(self, archive: zipfile.ZipFile, rel: str, files: BundleFiles):
        self.archive, self.rel, self.files = archive, rel, files
        self.names = {info.filename[:-4]: info for info in archive.infolist() if info.filename.endswith(".npy")}

    def __contains__(self, key: str) -> bool:
        return key in self.names

    def __enter__(self) -> "NpzArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.archive.close()

    def header(self, key: str) -> tuple[np.dtype, tuple[int, ...]]:
        """dtype and shape of member ``key`` (only its first few hundred bytes are inflated)."""
        what = f'array "{key}" '
        if key not in self.names:
            raise BundleError(self.rel, f'missing array "{key}"')
        with self.files.reading(self.rel), self.archive.open(self.names[key]) as member:
            descr, _, shape, _ = _npy_header(member, self.rel, what)
            return _npy_dtype(descr, None, self.rel, what), shape

    def read(self, key: str, shape: tuple[int | None, ...], kinds: str, limits: dict[int, int] | None = None,
             names: tuple[str, ...] | None = None) -> np.ndarray:
        """Member ``key`` after its header matched ``shape`` (None: a free axis bounded by ``limits``) and
        a dtype kind in ``kinds`` ("f" float, "i"/"u" integer, "S" bytes); its data is then inflated."""
        what = f'array "{key}" '
        if key not in self.names:
            raise BundleError(self.rel, f'missing array "{key}"')
        info = self.names[key]
        with self.files.reading(self.rel), self.archive.open(info) as member:
            descr, fortran, found, offset = _npy_header(member, self.rel, what)
            dtype = _npy_dtype(descr, None, self.rel, what)
            if dtype.kind not in kinds:
                raise BundleError(self.rel, f'array "{key}" has dtype {dtype}, expected {_kind_names(kinds)}')
            _check_shape(found, shape, limits or {}, self.rel, what, names)
            nbytes = math.prod(found) * dtype.itemsize
            if info.file_size != offset + nbytes:
                raise BundleError(self.rel, f'array "{key}" announces {nbytes:,} bytes of data but the archive '
                                            f"holds {info.file_size - offset:,}: it is damaged")
            data = member.read(nbytes + 1)  # zipfile checks the CRC at the end of the member
            if len(data) != nbytes:
                raise BundleError(self.rel, f'array "{key}" is truncated')
            array = np.frombuffer(data, dtype=dtype).reshape(found, order="F" if fortran else "C")
            return array


def _kind_names(kinds: str) -> str:
    names = {"f": "floating point", "i": "integer", "u": "integer", "S": "text", "U": "text", "b": "boolean"}
    return " or ".join(dict.fromkeys(names[k] for k in kinds))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _npy_header(handle, file: str, what: str = "") -> tuple[str, bool, tuple[int, ...], int]:
    """Parse an ``.npy`` header without numpy's loader: (descr, fortran_order, shape, data offset).

    Problems raise :class:`BundleError` for ``file``, prefixed with ``what`` (an npz member's name)."""
    def fail(problem: str) -> BundleError:
        return BundleError(file, what + problem)

    magic = handle.read(8)
    if len(magic) < 8 or magic[:6] != b"\x93NUMPY":
        raise fail("is not a .npy array (bad magic bytes)")
    major = magic[6]
    if major == 1:
        (length,), offset = struct.unpack("<H", handle.read(2)), 10
    elif major in (2, 3):
        (length,), offset = struct.unpack("<I", handle.read(4)), 12
    else:
        raise fail(f"has an unknown .npy format version {major}")
    if length > MAX_NPY_HEADER:
        raise fail(f"has a {length:,}-byte .npy header; real ones are under {MAX_NPY_HEADER:,}")
    raw = handle.read(length)
    if len(raw) != length:
        raise fail("ends inside its .npy header")
    try:
        header = ast.literal_eval(raw.decode("latin1" if major < 3 else "utf-8"))
    except Exception:  # noqa: BLE001 - SyntaxError, ValueError, MemoryError, RecursionError...
        raise fail("has a damaged .npy header") from None
    if not (isinstance(header, dict) and set(header) == {"descr", "fortran_order", "shape"}
            and isinstance(header["descr"], str) and isinstance(header["fortran_order"], bool)
            and isinstance(header["shape"], tuple) and all(_is_int(s) and s >= 0 for s in header["shape"])):
        raise fail(f"has a malformed .npy header {raw[:120].decode('latin1').strip()!r}")
    if any(s >= 2**48 for s in header["shape"]):
        raise fail(f"announces an impossible shape {header['shape']}")
    return header["descr"], header["fortran_order"], header["shape"], offset + length


def _npy_dtype(descr: str, allowed: tuple[str, ...] | None, file: str, what: str = "") -> np.dtype:
    """A plain numeric dtype from a header's descr; structured, object and unknown types are refused."""
    if not re.fullmatch(r"[<>|=]?[a-zA-Z]\d{0,2}", descr):
        if "O" in descr:
            raise BundleError(file, f"{what}holds a pickled object array; bundles never contain pickles")
        raise BundleError(file, f"{what}has dtype {descr[:40]!r}, which a bundle never uses")
    dtype = np.dtype(descr)
    if dtype.hasobject:
        raise BundleError(file, f"{what}holds a pickled object array; bundles never contain pickles")
    if dtype.kind not in "biufcSU":
        raise BundleError(file, f"{what}has dtype {dtype}; bundles hold plain numbers")
    if allowed is not None and dtype.name not in allowed:
        raise BundleError(file, f"{what}has dtype {dtype.name}, expected {' or '.join(allowed)}")
    return dtype


def _check_shape(found: tuple[int, ...], expected: tuple[int | None, ...], limits: dict[int, int], file: str,
                 what: str = "", names: tuple[str, ...] | None = None) -> None:
    """``found`` against ``expected`` (None: free axis, at most ``limits[axis]``); ``names`` label the axes."""
    names = names or tuple(f"axis {i}" for i in range(len(expected)))
    wanted = "(" + ", ".join(n if e is None else f"{n}={e}" for n, e in zip(names, expected)) + ")"
    if len(found) != len(expected) or any(e is not None and f != e for f, e in zip(found, expected)):
        raise BundleError(file, f"{what}has shape {found}, expected {wanted}")
    for axis, (f, e) in enumerate(zip(found, expected)):
        if e is None and axis in limits and f > limits[axis]:
            raise BundleError(file, f"{what}has shape {found}: {names[axis]}={f:,} is more than the "
                                    f"{limits[axis]:,} this bundle allows")


def walk_inside(folder: Path, root: Path, what: str, max_entries: int = 10000) -> None:
    """Refuse a folder (a model in ``vlm/``) that holds a link to anything outside ``root``."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            count += 1
            if count > max_entries:
                raise BundleError(what, f"holds more than {max_entries:,} files")
            if not inside(Path(dirpath) / name, root):
                rel = (Path(dirpath) / name).relative_to(folder)
                raise BundleError(what, f"{rel} points outside the bundle (a symbolic link); a bundle must "
                                        "contain its files")
