"""Other models' captions for a bundle's test trials (Qt-free): matched by ``nsd_id``, by trial id or by
BrainHub's position (ascending ``nsd_id``), with every missing, extra and empty entry reported — a
file is never shifted onto the wrong trials. ``brainview compare``, ``brainview open --captions`` and
the app's File → Add model captions… all read a model's file through :func:`load_model_captions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from brainview.analysis.caption_files import describe_keys, read_predictions
from brainview.errors import UserError


@dataclass
class ModelCaptions:
    """One model's caption per bundle trial (``None`` where the file has none) and what did not match."""

    name: str
    path: str
    matched_by: str
    captions: list[str | None]
    missing: list[str] = field(default_factory=list)  # trial ids the file has no caption for
    extra: list[str] = field(default_factory=list)  # keys of the file that name no test trial
    empty: list[str] = field(default_factory=list)  # trial ids whose caption is empty

    def problems(self) -> list[str]:
        """What a user must be told about this file, one line each (empty when it matches exactly)."""
        out = []
        if self.missing:
            out.append(f"{self.name}: no caption for {len(self.missing)} trials ({describe_keys(self.missing)})")
        if self.extra:
            out.append(f"{self.name}: {len(self.extra)} entries match no test trial ({describe_keys(self.extra)})")
        if self.empty:
            out.append(f"{self.name}: {len(self.empty)} empty captions ({describe_keys(self.empty)})")
        return out

    def to_json(self) -> dict:
        return {"name": self.name, "path": self.path, "matched_by": self.matched_by, "missing": self.missing,
                "extra": self.extra, "empty": self.empty}


def parse_spec(spec: str) -> tuple[str, str]:
    """``NAME=FILE`` → (name, file)."""
    name, sep, path = spec.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise UserError(f"--captions takes NAME=FILE (e.g. UMBRAE=umbrae.json), got {spec!r}")
    return name.strip(), path.strip()


def _trial_keys(trials: list[dict], kind: str) -> tuple[list[str], str]:
    """The key of each trial for a file keyed by ``kind``, and how the match is described."""
    has_nsd = bool(trials) and all("nsd_id" in t for t in trials)
    if kind == "nsd_id":
        if not has_nsd:
            raise UserError("the file is keyed by nsd_id but the bundle's trials have no nsd_id; key it by trial id")
        return [str(int(t["nsd_id"])) for t in trials], "nsd_id"
    if kind == "id":
        return [str(t["id"]) for t in trials], "trial id"
    if has_nsd:  # BrainHub's index k is the k-th test image in ascending nsd_id
        order = sorted(range(len(trials)), key=lambda i: int(trials[i]["nsd_id"]))
        keys = [""] * len(trials)
        for position, i in enumerate(order):
            keys[i] = str(position)
        return keys, "position in ascending nsd_id (BrainHub's order)"
    return [str(i) for i in range(len(trials))], "position (the order of the test trials or references)"


def match_captions(name: str, path: str, trials: list[dict]) -> ModelCaptions:
    """The captions of the file at ``path`` on the bundle's ``trials`` (``test/trials.json``)."""
    keyed = read_predictions(path)
    keys, how = _trial_keys(trials, keyed.kind)
    by_key = keyed.as_dict()
    captions = [by_key.get(k) for k in keys]
    ids = [str(t["id"]) for t in trials]
    matched = set(keys)
    if not matched & set(by_key):
        raise UserError(f"{path} ({name}): none of its {len(by_key)} entries matches a test trial by {how} "
                        f"(its keys look like {describe_keys(keyed.keys, 3)}; trials like {describe_keys(keys, 3)})")
    return ModelCaptions(
        name, str(path), how, captions,
        missing=[i for i, c in zip(ids, captions) if c is None],
        extra=[k for k in keyed.keys if k not in matched],
        empty=[i for i, c in zip(ids, captions) if c == ""])


#: the folder of a bundle that carries other models' caption files (``models/NAME.json|.csv|.txt``)
CARRIED_FOLDER = "models"
CAPTION_SUFFIXES = (".json", ".csv", ".txt")


def carried_specs(bundle_path: str | Path) -> list[str]:
    """``NAME=FILE`` for each caption file the bundle carries in ``models/`` (the name is the file's stem)."""
    folder = Path(bundle_path) / CARRIED_FOLDER
    if not folder.is_dir():
        return []
    return [f"{p.stem}={p}" for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in CAPTION_SUFFIXES]


def load_model_captions(specs: list[str], trials: list[dict]) -> list[ModelCaptions]:
    """Every ``NAME=FILE`` of ``--captions`` matched to ``trials``; names must be distinct."""
    models: list[ModelCaptions] = []
    for spec in specs:
        name, path = parse_spec(spec)
        if any(m.name == name for m in models):
            raise UserError(f"two caption files are named {name!r}; give each model its own name")
        if not Path(path).exists():
            raise UserError(f"captions file {path} ({name}) does not exist")
        models.append(match_captions(name, path, trials))
    return models
