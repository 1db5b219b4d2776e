"""Texts a language query is made of: phrases, zero-shot labels with their prompts, and truth fields.

A query is a :class:`Label`: a name and the prompts whose text embeddings are averaged and
renormalized (CLIP's prompt ensembling). The same syntax works wherever a phrase is typed:
``PHRASE`` (one prompt), ``P1;P2`` (an ensemble named by its text) or ``NAME=P1;P2``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from brainview.errors import UserError

DEFAULT_TEMPLATE = "a photo of a {}"


@dataclass(frozen=True)
class Label:
    """A zero-shot class or a query: the name matched against the truth and the prompts whose embeddings are averaged."""

    name: str
    prompts: tuple[str, ...]

    @property
    def spec(self) -> str:
        """The text that parses back into this label (``NAME=P1;P2``, or the phrase itself)."""
        return self.name if self.prompts == (self.name,) else f"{self.name}={';'.join(self.prompts)}"


def clean_phrase(phrase: str) -> str:
    """The phrase with its whitespace collapsed; ``UserError`` when nothing is left."""
    phrase = " ".join(str(phrase).split())
    if not phrase:
        raise UserError("the phrase is empty: type what to look for")
    return phrase


def _prompts(what: str, text: str) -> tuple[str, ...]:
    prompts = tuple(" ".join(p.split()) for p in text.split(";") if p.strip())
    if not prompts:
        raise UserError(f"{what} has '=' but no prompts after it")
    return prompts


def parse_query(text: str | Label) -> Label:
    """A phrase as a query: ``PHRASE``, ``P1;P2`` (named by its text) or ``NAME=P1;P2`` (a prompt ensemble)."""
    if isinstance(text, Label):
        return text
    text = clean_phrase(text)
    name, equals, rest = text.partition("=")
    if equals:
        name = name.strip()
        if not name:
            raise UserError(f"{text!r} has no name before '='")
        return Label(name, _prompts(repr(name), rest))
    prompts = _prompts(repr(text), text)
    return Label(text if len(prompts) > 1 else prompts[0], prompts)


def parse_labels(items: Sequence[str], template: str = DEFAULT_TEMPLATE) -> list[Label]:
    """Labels from ``NAME`` (prompt: the template with ``{}`` replaced by NAME) or ``NAME=PROMPT1;PROMPT2``."""
    if "{}" not in template:
        raise UserError(f"the prompt template {template!r} has no {{}} where the label goes")
    labels: list[Label] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        name, _, prompts = item.partition("=")
        name = name.strip()
        if not name:
            raise UserError(f"label {item!r} has no name before '='")
        own = _prompts(f"label {name!r}", prompts) if "=" in item else (template.replace("{}", name),)
        labels.append(Label(name, own))
    names = [label.name for label in labels]
    if len(labels) < 2:
        raise UserError(f"zero-shot labelling needs at least two labels, got {len(labels)}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserError(f"label {duplicates[0]!r} is given twice")
    return labels


def field_value(trial: Mapping, path: str):
    """The value at a dotted path (``scene.category``) of a trial object, or None where it is absent."""
    value = trial
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def truth_fields(trials: Sequence[Mapping], limit: int = 64) -> list[str]:
    """Dotted paths of the scalar fields of the trial objects that vary across trials (truth candidates)."""
    def walk(obj, prefix=""):
        for key, value in obj.items():
            path = f"{prefix}{key}"
            if isinstance(value, Mapping):
                yield from walk(value, path + ".")
            elif isinstance(value, (str, int, bool)) and key != "id":
                yield path
    paths = list(dict.fromkeys(p for t in trials[:limit] for p in walk(t)))
    return [p for p in paths if len({str(field_value(t, p)) for t in trials[:limit]}) > 1]


def truth_indices(trials: Sequence[Mapping], labels: Sequence[Label], truth_field: str) -> np.ndarray:
    """Label index of each trial's truth value at ``truth_field`` (-1 where it is not a label); ``UserError``
    when no trial has the field or no value is a label."""
    values = [field_value(t, truth_field) for t in trials]
    present = [v for v in values if v is not None]
    if not present:
        fields = truth_fields(trials)
        raise UserError(f"no trial has a field {truth_field!r}; "
                        + (f"fields that vary: {', '.join(fields)}" if fields else "the trials carry no such fields"))
    index = {label.name: i for i, label in enumerate(labels)}
    truth = np.array([index.get(str(v), -1) if v is not None else -1 for v in values], dtype=np.int64)
    if not (truth >= 0).any():
        seen = sorted({str(v) for v in present})
        raise UserError(f"none of the trials' {truth_field} values ({', '.join(seen[:12])}) is one of the labels "
                        f"({', '.join(index)})")
    return truth


def field_labels(trials: Sequence[Mapping], truth_field: str, finer: str | None = None,
                 template: str = DEFAULT_TEMPLATE) -> list[str]:
    """Label specs for the values of ``truth_field``; with ``finer`` (a field that refines it, e.g. scene.kind
    under scene.category) each label is the prompt ensemble of the template over the finer values it covers:
    ``place=a photo of a barn;a photo of a couch;…``, the label's prompts from the scenes it stands for."""
    if "{}" not in template:
        raise UserError(f"the prompt template {template!r} has no {{}} where the label goes")
    covered: dict[str, set[str]] = {}
    for trial in trials:
        value = field_value(trial, truth_field)
        if value is not None:
            sub = field_value(trial, finer) if finer else None
            covered.setdefault(str(value), set()).update([str(sub)] if sub is not None else [])
    if not finer:
        return sorted(covered)
    return [f"{name}={';'.join(template.replace('{}', v) for v in sorted(subs or {name}))}"
            for name, subs in sorted(covered.items())]


def refining_fields(trials: Sequence[Mapping], truth_field: str) -> list[str]:
    """Fields with more values than ``truth_field``, present wherever it is, each value within one of its values
    (its sub-classes: scene.kind under scene.category)."""
    out = []
    for other in truth_fields(trials):
        if other == truth_field:
            continue
        parents: dict[str, set[str]] = {}
        covers = True  # every trial with a truth value has a finer one
        for trial in trials:
            value, sub = field_value(trial, truth_field), field_value(trial, other)
            if value is not None:
                covers = covers and sub is not None
                if sub is not None:
                    parents.setdefault(str(sub), set()).add(str(value))
        if covers and parents and all(len(p) == 1 for p in parents.values()) and \
                len(parents) > len({next(iter(p)) for p in parents.values()}):
            out.append(other)
    return out
