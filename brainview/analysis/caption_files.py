"""Caption files as the field ships them, read into one keyed form (Qt-free).

Read: a text file (one caption per line); a JSON list of captions or of reference lists; BrainHub's
JSON, a dict ``"0".."981"`` → caption (or → list of references), whose keys are *positions* and are
sorted numerically ("10" after "9"); a JSON dict trial id → caption; a JSON list of records with
``caption`` / ``references`` and ``nsd_id`` or ``id``; the MICCAI paper repository's CSV
(``nsd_id,caption,true_captions``). Newlines inside a caption become spaces; an empty caption stays
an empty caption (it scores 0, it never drops a line).

Every file is keyed: ``kind`` is ``"position"`` (lines, list entries, BrainHub's numeric keys),
``"nsd_id"`` or ``"id"`` (a trial id), so two files are matched by key, never shifted.
"""

from __future__ import annotations

import ast
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from brainview.bundle.user_files import read_user_text
from brainview.errors import UserError

V = TypeVar("V")
KEY_COLUMNS = ("nsd_id", "id", "trial")
REFERENCE_FIELDS = ("true_captions", "references")


@dataclass
class Keyed(Generic[V]):
    """Values read from one file, in the file's order (numeric keys sorted numerically)."""

    path: str
    kind: str  # "position", "nsd_id" or "id"
    keys: list[str]
    values: list[V]

    def as_dict(self) -> dict[str, V]:
        return dict(zip(self.keys, self.values))


def flat(text: str) -> str:
    """A caption on one line: newlines and runs of white space become one space."""
    return " ".join(text.split())


#: the largest text file a command reads (captions, labels, phrases, references): far above real ones
MAX_TEXT_FILE = 16 * 2**20


def read_text(path: str, what: str, max_bytes: int = MAX_TEXT_FILE) -> str:
    """The text of the user's ``what`` file: a regular file of at most ``max_bytes`` (no FIFO, device or
    folder), UTF-8; anything else is one ``UserError`` naming the file."""
    return read_user_text(path, max_bytes, f"{what} file {path}")


def _caption(value, path: str, key: str) -> str:
    if not isinstance(value, str):
        raise UserError(f"{path}: the caption of {key!r} is not a string: {value!r}")
    return flat(value)


def _references(value, path: str, key: str) -> list[str]:
    if isinstance(value, str):  # a CSV cell: a JSON or Python list, or captions joined by |||
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                try:
                    value = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    raise UserError(f"{path}: the references of {key!r} are not a list: {text[:80]!r}") from None
        else:
            value = text.split("|||")
    if not (isinstance(value, (list, tuple)) and value and all(isinstance(r, str) for r in value)):
        raise UserError(f"{path}: the references of {key!r} must be a non-empty list of strings")
    return [flat(r) for r in value]


def _numeric_order(keys: list[str]) -> list[str] | None:
    """The keys sorted as numbers when all are non-negative integers written in decimal, else None."""
    if keys and all(k.isdigit() for k in keys):
        return sorted(keys, key=int)
    return None


def _from_dict(data: dict, path: str, parse) -> Keyed:
    keys = [str(k) for k in data]
    numeric = _numeric_order(keys)
    order = numeric if numeric is not None else keys
    return Keyed(path, "position" if numeric is not None else "id", order,
                 [parse(data[k], path, k) for k in order])


def _record_key(record: dict, i: int) -> tuple[str, str]:
    for field in KEY_COLUMNS:
        if record.get(field) not in (None, ""):
            return ("nsd_id" if field == "nsd_id" else "id"), str(record[field]).strip()
    return "position", str(i)


def _from_records(rows: list[dict], path: str, field: str | None, parse) -> Keyed:
    kinds, keys, values = set(), [], []
    for i, row in enumerate(rows):
        if field not in row:
            raise UserError(f"{path}: entry {i + 1} has no {field!r}")
        kind, key = _record_key(row, i)
        kinds.add(kind)
        keys.append(str(int(key)) if kind == "nsd_id" and key.isdigit() else key)
        values.append(parse(row[field], path, key))
    if len(kinds) > 1:
        raise UserError(f"{path}: some entries have {' and some '.join(sorted(kinds))} keys; give every entry the same")
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise UserError(f"{path}: {len(duplicates)} keys appear more than once (e.g. {duplicates[0]!r})")
    return Keyed(path, kinds.pop() if kinds else "position", keys, values)


def _csv_rows(text: str, path: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise UserError(f"{path} is an empty CSV file")
    reader.fieldnames = [f.strip() for f in reader.fieldnames]
    return list(reader)


def _load(path: str, what: str):
    text = read_text(path, what)
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return _csv_rows(text, path)
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{what} file {path} is not valid JSON: {exc}") from None
    return text


def _positional(path: str, values: list) -> Keyed:
    return Keyed(path, "position", [str(i) for i in range(len(values))], values)


def read_predictions(path: str) -> Keyed[str]:
    """A model's captions from any of the module's formats."""
    data = _load(path, "predictions")
    if isinstance(data, str):
        lines = data.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            return _positional(path, [flat(line) for line in lines])
    elif isinstance(data, dict) and data and all(isinstance(v, str) for v in data.values()):
        return _from_dict(data, path, _caption)
    elif isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return _from_records(data, path, "caption", _caption)
    elif isinstance(data, list) and data and all(isinstance(c, str) for c in data):
        return _positional(path, [flat(c) for c in data])
    raise UserError(f"predictions file {path} must hold captions: lines of text, a JSON list of strings, a JSON "
                    "dict key -> caption (BrainHub), JSON records with \"caption\" or a CSV with a caption column")


def read_references(path: str) -> Keyed[list[str]]:
    """Reference captions (several per image) from a JSON list of lists, BrainHub's dict, JSON records
    with ``references`` or a CSV with a ``true_captions`` column."""
    data = _load(path, "references")
    if isinstance(data, dict):
        return _from_dict(data, path, _references)
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        field = next((f for f in REFERENCE_FIELDS if f in data[0]), None)
        if field is None:
            raise UserError(f"{path} has no {' or '.join(REFERENCE_FIELDS)} field")
        return _from_records(data, path, field, _references)
    if isinstance(data, list) and data:
        return _positional(path, [_references(r, path, str(i)) for i, r in enumerate(data)])
    raise UserError(f"references file {path} must be a JSON list of non-empty lists of strings, a JSON dict "
                    "key -> list (BrainHub), or a CSV with a true_captions column")


def describe_keys(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" … ({len(keys)} in all)" if len(keys) > limit else "")


def align(predictions: Keyed[str], references: Keyed[list[str]]) -> tuple[list[str], list[str], list[list[str]]]:
    """(keys, captions, references) of the same images, in the references' order; a key one file has and
    the other lacks is a :class:`UserError` naming it (nothing is ever matched by shifting)."""
    if predictions.kind != references.kind:
        raise UserError(f"{predictions.path} is keyed by {predictions.kind} but {references.path} by "
                        f"{references.kind}; key both the same way")
    pred = predictions.as_dict()
    missing = [k for k in references.keys if k not in pred]
    extra = [k for k in predictions.keys if k not in set(references.keys)]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"no caption for {len(missing)} of {len(references.keys)} images ({describe_keys(missing)})")
        if extra:
            parts.append(f"{len(extra)} captions have no references ({describe_keys(extra)})")
        raise UserError(f"{len(predictions.keys)} predictions in {predictions.path} but {len(references.keys)} reference "
                        f"lists in {references.path}: {'; '.join(parts)}")
    return list(references.keys), [pred[k] for k in references.keys], list(references.values)
