"""Declarative checks for values that come from a user's file or reach a setter (Qt-free).

A schema is built from the small pieces below (``Number(0.5, 50)``, ``Choice("a", "b")``,
``Record({...})``…); ``spec.check(value, "where")`` raises one :class:`SchemaError` that says
where the value is and what it must be. Session files and studies validate a whole document with
them before anything is applied, and the widgets' setters validate with the same pieces before
they store a value, so a bad value is refused in one place whatever its way in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from brainview.errors import UserError


class SchemaError(UserError):
    """A value that does not fit its schema: where it is and what it must be."""


class Spec:
    """One kind of value. ``check`` raises :class:`SchemaError`; ``what`` says it in words. A leaf kind
    defines ``fits``; a container (:class:`ListOf`, :class:`Record`) defines ``check``, which names the
    item at fault, and inherits ``fits`` from :class:`Container`."""

    what = "a value"

    def check(self, value: Any, where: str) -> None:
        if not self.fits(value):
            raise SchemaError(f"{where} must be {self.what}, got {shown(value)}")

    def fits(self, value: Any) -> bool:
        raise NotImplementedError


def shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Number(Spec):
    """A finite int or float in ``[lo, hi]``."""

    lo: float = -math.inf
    hi: float = math.inf

    @property
    def what(self) -> str:
        return f"a finite number from {self.lo:g} to {self.hi:g}"

    def fits(self, value: Any) -> bool:
        return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                and self.lo <= value <= self.hi)


@dataclass(frozen=True)
class Integer(Spec):
    """An int in ``[lo, hi]`` (a bool is not an integer here)."""

    lo: int = 0
    hi: int = 2**31 - 1

    @property
    def what(self) -> str:
        return f"an integer from {self.lo} to {self.hi}"

    def fits(self, value: Any) -> bool:
        return _is_int(value) and self.lo <= value <= self.hi


@dataclass(frozen=True)
class Text(Spec):
    """A string of at most ``max_len`` characters (``non_empty``: at least one that is not a space)."""

    max_len: int = 4096
    non_empty: bool = False

    @property
    def what(self) -> str:
        return f"{'non-empty ' if self.non_empty else ''}text of at most {self.max_len:,} characters"

    def fits(self, value: Any) -> bool:
        return isinstance(value, str) and len(value) <= self.max_len and (not self.non_empty or bool(value.strip()))


class Boolean(Spec):
    what = "true or false"

    def fits(self, value: Any) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True)
class Choice(Spec):
    options: tuple = ()

    def __init__(self, *options):
        object.__setattr__(self, "options", tuple(options))

    @property
    def what(self) -> str:
        return "one of " + ", ".join(map(repr, self.options))

    def fits(self, value: Any) -> bool:
        return any(type(value) is type(option) and value == option for option in self.options)  # True is not 1


@dataclass(frozen=True)
class Optional(Spec):
    """None, or a value of ``inner``."""

    inner: Spec

    @property
    def what(self) -> str:
        return f"null or {self.inner.what}"

    def check(self, value: Any, where: str) -> None:
        if value is not None:
            self.inner.check(value, where)

    def fits(self, value: Any) -> bool:
        return value is None or self.inner.fits(value)


@dataclass(frozen=True)
class Satisfies(Spec):
    """A value ``test`` accepts (a test that raises counts as a refusal); ``what`` describes it."""

    test: Callable[[Any], bool]
    what: str = "a valid value"

    def fits(self, value: Any) -> bool:
        try:
            return bool(self.test(value))
        except Exception:  # noqa: BLE001 - any failure of the test is a refusal
            return False


@dataclass(frozen=True)
class Container(Spec):
    """A kind whose ``check`` walks its items; it fits when that check passes."""

    def fits(self, value: Any) -> bool:
        try:
            self.check(value, "")
        except SchemaError:
            return False
        return True


@dataclass(frozen=True)
class ListOf(Container):
    """A list of at most ``max_items`` items of ``item`` (exactly ``length`` when given)."""

    item: Spec
    max_items: int = 10_000
    length: int | None = None

    @property
    def what(self) -> str:
        count = f"{self.length}" if self.length is not None else f"at most {self.max_items:,}"
        return f"a list of {count} items, each {self.item.what}"

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, list) or len(value) > self.max_items or \
                (self.length is not None and len(value) != self.length):
            raise SchemaError(f"{where} must be {self.what}, got {shown(value)}")
        for i, item in enumerate(value):
            self.item.check(item, f"{where}[{i}]")


@dataclass(frozen=True)
class IntegerIds(ListOf):
    """A long list of integer ids in ``[0, hi]``, checked in one pass (selections hold millions)."""

    item: Spec = field(default_factory=lambda: Integer(0, 2**31 - 1))
    max_items: int = 10_000_000

    def check(self, value: Any, where: str) -> None:
        hi = self.item.hi
        if not isinstance(value, list) or len(value) > self.max_items:
            raise SchemaError(f"{where} must be a list of at most {self.max_items:,} integers, got {shown(value)}")
        bad = next((v for v in value if not (_is_int(v) and 0 <= v <= hi)), _OK)
        if bad is not _OK:
            raise SchemaError(f"{where} must hold integers from 0 to {hi:,}, got {shown(bad)}")


_OK = object()


@dataclass(frozen=True)
class DictOf(Container):
    """A JSON object of at most ``max_items`` entries, keys of ``key`` and values of ``value``."""

    key: Spec
    value: Spec
    max_items: int = 1000

    what = "an object"

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, dict) or len(value) > self.max_items:
            raise SchemaError(f"{where} must be an object of at most {self.max_items:,} entries, got {shown(value)}")
        for k, v in value.items():
            self.key.check(k, f"a key of {where}")
            self.value.check(v, f"{where}.{k}")


@dataclass(frozen=True)
class Record(Container):
    """A JSON object with the named ``fields`` (those in ``optional`` may be absent; keys the record
    does not name are left alone, so a newer file still opens)."""

    fields: Mapping[str, Spec]
    optional: frozenset = frozenset()

    what = "an object"

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise SchemaError(f"{where} must be an object, got {shown(value)}")
        for name, spec in self.fields.items():
            if name in value:
                spec.check(value[name], f"{where}.{name}" if where else name)
            elif name not in self.optional:
                raise SchemaError(f"{where or 'the file'} lacks {name!r}")


def record(optional: tuple[str, ...] = (), **fields: Spec) -> Record:
    """A :class:`Record` written as keywords: ``record(x=Number(), optional=("x",))``."""
    return Record(dict(fields), frozenset(optional))
