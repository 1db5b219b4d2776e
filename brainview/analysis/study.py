"""A study: several subjects' bundles opened together, their trials matched by stimulus (Qt-free).

Why a small ``study.json`` rather than only a folder of bundles: the study names its subjects and
their order (subj01, subj02, … as Table 3 of the MICCAI paper), says which trial field identifies a
stimulus across subjects (``nsd_id`` for NSD, the trial id for the demo, whose subjects saw the same
seeded scenes), and may point at a bundle that lives elsewhere (the embedded demo bundle is subject 1
of the demo study, the other subjects are built into a cache folder). A plain folder whose
sub-folders are bundles is accepted too (subjects in name order, matched by ``nsd_id`` when every
trial has one, else by trial id). Every bundle stays a complete version-1 bundle that opens alone.

``study.json``::

    {"format": "brainview-study", "version": 1, "name": "…", "match": "nsd_id",
     "subjects": [{"id": "subj01", "bundle": "subj01"}, {"id": "subj02", "bundle": "/abs/path"}]}

``bundle`` is relative to the folder of ``study.json`` unless absolute.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from brainview.bundle import schema as S
from brainview.bundle.format import BRAIN_MODEL, FMRI, TRIALS
from brainview.bundle.user_files import read_user_json
from brainview.errors import UserError

STUDY_FILE = "study.json"
FORMAT, VERSION = "brainview-study", 1
MAX_STUDY_BYTES = 1 << 20
MAX_SUBJECTS = 64
#: the largest ``test/trials.json`` read to check ``match`` when a study is loaded
MAX_TRIALS_BYTES = 256 * 2**20
_ID = S.Text(max_len=200, non_empty=True)
#: ``study.json``, checked whole before any bundle is opened; a new field is one line here
STUDY_SCHEMA = S.record(
    format=S.Choice(FORMAT), version=S.Choice(VERSION), name=S.Text(max_len=1000),
    match=S.Text(max_len=200, non_empty=True),
    subjects=S.ListOf(S.record(id=_ID, bundle=S.Text(max_len=4096, non_empty=True)), max_items=MAX_SUBJECTS),
    optional=("name", "match"))


class StudyError(UserError):
    """A study that cannot be opened: one message naming the file and the problem."""


@dataclass(frozen=True)
class StudySubject:
    id: str
    path: Path


@dataclass
class Study:
    """The subjects of a study and how their trials match. Bundles are opened on first use."""

    path: Path
    name: str
    match: str
    subjects: list[StudySubject]
    extra: dict[str, Any] = field(default_factory=dict)
    _bundles: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.subjects]

    def subject(self, subject_id: str) -> StudySubject:
        for s in self.subjects:
            if s.id == subject_id:
                return s
        raise StudyError(f"{self.path}: no subject {subject_id!r}; it has {', '.join(self.ids)}")

    def bundle(self, subject_id: str):
        """The subject's bundle, opened and validated once (a broken one raises its ``BundleError``)."""
        if subject_id not in self._bundles:
            from brainview.bundle import open_bundle

            self._bundles[subject_id] = open_bundle(self.subject(subject_id).path)
        return self._bundles[subject_id]

    def subject_of(self, bundle_path: str | Path) -> str | None:
        """The id of the subject whose bundle is at ``bundle_path`` (None when it is not in the study)."""
        target = Path(bundle_path).expanduser().resolve()
        return next((s.id for s in self.subjects if s.path.resolve() == target), None)

    @cached_property
    def stimuli(self) -> "StimulusMatch":
        return match_stimuli({s.id: stimulus_keys(self.bundle(s.id), self.match) for s in self.subjects})


@dataclass(frozen=True)
class StimulusMatch:
    """The union of the subjects' stimuli (first subject's order, then what others add) and, per
    subject, the trial index of each stimulus or -1 where the subject did not see it."""

    keys: list[str]
    trial: dict[str, np.ndarray]

    def index(self, key: str) -> int:
        return self.keys.index(key)

    def trial_of(self, subject_id: str, key: str) -> int | None:
        """The subject's trial of stimulus ``key``; None when that subject did not see it."""
        try:
            t = int(self.trial[subject_id][self.keys.index(key)])
        except ValueError:
            return None
        return t if t >= 0 else None

    def seen_by(self, key: str) -> list[str]:
        return [s for s in self.trial if self.trial_of(s, key) is not None]

    def shared(self) -> list[str]:
        """Stimuli every subject saw."""
        return [k for i, k in enumerate(self.keys) if all(t[i] >= 0 for t in self.trial.values())]


def stimulus_keys(bundle, match: str) -> list[str]:
    """Each trial's stimulus key: the trial field ``match`` as text (``"id"``: the trial id)."""
    keys = []
    for i, trial in enumerate(bundle.trials):
        value = trial.get(match)
        if value is None or isinstance(value, (dict, list)):
            raise StudyError(f"{bundle.path}: trial {i} ({trial['id']}) has no {match!r} to match stimuli by")
        keys.append(str(value))
    if len(set(keys)) != len(keys):
        raise StudyError(f"{bundle.path}: several trials share one {match!r}; a stimulus must be one trial "
                         "(average its repeats)")
    return keys


def match_stimuli(keys: dict[str, list[str]]) -> StimulusMatch:
    """Match trials across subjects by stimulus key (see :class:`StimulusMatch`)."""
    order: dict[str, int] = {}
    for subject_keys in keys.values():
        for k in subject_keys:
            order.setdefault(k, len(order))
    trial = {}
    for subject, subject_keys in keys.items():
        index = np.full(len(order), -1, dtype=np.int64)
        index[[order[k] for k in subject_keys]] = np.arange(len(subject_keys))
        trial[subject] = index
    return StimulusMatch(list(order), trial)


def is_study(path: str | Path) -> bool:
    """A ``study.json`` file, or a folder holding one or holding bundles (and not itself a bundle)."""
    p = Path(path).expanduser()
    if p.is_file():
        return p.name == STUDY_FILE or _looks_like_study_json(p)
    if not p.is_dir() or (p / "manifest.json").exists():
        return False
    return (p / STUDY_FILE).is_file() or bool(_bundle_folders(p))


def _looks_like_study_json(p: Path) -> bool:
    if p.suffix != ".json":
        return False
    try:
        return read_user_json(p, MAX_STUDY_BYTES).get("format") == FORMAT
    except (UserError, AttributeError):
        return False


def _bundle_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / "manifest.json").is_file())


def load_study(path: str | Path) -> Study:
    """Read a study (``study.json``, a folder with one, or a folder of bundles); bundles open lazily."""
    p = Path(path).expanduser()
    if not p.exists():
        raise StudyError(f"no study at {p}: the path does not exist")
    if p.is_dir() and not (p / STUDY_FILE).is_file():
        folders = _bundle_folders(p)
        if not folders:
            raise StudyError(f"{p} is not a study: it holds neither {STUDY_FILE} nor bundle folders")
        if len(folders) > MAX_SUBJECTS:
            raise StudyError(f"{p} holds {len(folders)} bundle folders; a study has at most {MAX_SUBJECTS} subjects")
        subjects = [StudySubject(f.name, f.absolute()) for f in folders]
        _refuse_duplicates(p, subjects)
        trials = {s.id: _trials(s.path) for s in subjects}
        match = "nsd_id" if all("nsd_id" in t for ts in trials.values() for t in ts) else "id"
        _check_match(p, match, trials)
        return Study(p.absolute(), p.name, match, subjects)
    file = p / STUDY_FILE if p.is_dir() else p
    try:
        raw = read_user_json(file, MAX_STUDY_BYTES)
    except UserError as exc:
        raise StudyError(str(exc)) from None
    return _parse(file, raw)


def _parse(file: Path, raw: Any) -> Study:
    def expect(condition: bool, problem: str) -> None:
        if not condition:
            raise StudyError(f"{file}: {problem}")

    expect(isinstance(raw, dict), "must be a JSON object")
    expect(raw.get("format") == FORMAT, f'"format" must be "{FORMAT}"')
    expect(raw.get("version") == VERSION, f"version {S.shown(raw.get('version'))} is not known "
                                          f"(this brainview reads {VERSION})")
    entries = raw.get("subjects")
    expect(isinstance(entries, list) and 0 < len(entries) <= MAX_SUBJECTS,
           f'"subjects" must be a list of 1 to {MAX_SUBJECTS} objects')
    try:
        STUDY_SCHEMA.check(raw, "")
    except S.SchemaError as exc:
        raise StudyError(f"{file}: {exc}") from None
    match = raw.get("match", "id")
    subjects, root = [], file.parent.absolute()
    for entry in entries:
        bundle = Path(os.path.expanduser(entry["bundle"]))
        bundle = bundle if bundle.is_absolute() else root / bundle
        expect(bundle.is_dir(), f"the bundle of subject {entry['id']} ({bundle}) does not exist")
        expect((bundle / "manifest.json").is_file(), f"the bundle of subject {entry['id']} ({bundle}) is a folder "
                                                     "without a manifest.json, not a bundle")
        subjects.append(StudySubject(entry["id"], bundle))
    ids = [s.id for s in subjects]
    expect(len(set(ids)) == len(ids), "subject ids are not unique")
    _refuse_duplicates(file, subjects)
    _check_match(file, match, {s.id: _trials(s.path) for s in subjects})
    name = raw.get("name", file.parent.name)
    extra = {k: v for k, v in raw.items() if k not in ("format", "version", "name", "match", "subjects")}
    return Study(file.absolute(), name, match, subjects, extra)


def _trials(bundle: Path) -> list:
    """A subject's ``test/trials.json`` (bounded), read to check ``match`` before any bundle opens;
    an unreadable one is left to the bundle reader, which names the problem when the bundle opens."""
    try:
        trials = read_user_json(bundle / TRIALS, MAX_TRIALS_BYTES)
    except UserError:
        return []
    return [t for t in trials if isinstance(t, dict)] if isinstance(trials, list) else []


def _check_match(where: Path, match: str, trials: dict[str, list]) -> None:
    """Refuse a ``match`` field some subject's trials lack (or share), as the window would later."""
    for subject, subject_trials in trials.items():
        keys = [t.get("id") if match == "id" else t.get(match) for t in subject_trials]
        missing = sum(k is None or isinstance(k, (dict, list)) for k in keys)
        if missing:
            raise StudyError(f"{where}: {missing} of subject {subject}'s trials have no {match!r} to match "
                             "stimuli by")
        if len(set(map(str, keys))) != len(keys):
            raise StudyError(f"{where}: several trials of subject {subject} share one {match!r}; a stimulus "
                             "must be one trial")


def content_identity(bundle: Path) -> str:
    """What tells two subjects' bundles apart, cheaply: the sizes and the first and last MiB of the
    fMRI and the brain model (a copy of a bundle under another name has the same)."""
    import hashlib

    digest = hashlib.sha256()
    for rel in (FMRI, BRAIN_MODEL):
        path = bundle / rel
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise OSError("not a regular file")
            with open(path, "rb") as handle:
                head = handle.read(1 << 20)
                handle.seek(max(size - (1 << 20), 0))
                tail = handle.read(1 << 20)
        except OSError:
            return f"unreadable:{bundle.resolve()}"  # the bundle reader says what is wrong when it opens
        digest.update(f"{rel}:{size};".encode() + head + tail)
    return digest.hexdigest()


def _refuse_duplicates(where: Path, subjects: list[StudySubject]) -> None:
    """One bundle under two subject ids would make the spread across subjects a fake ``± 0.000``."""
    seen: dict[str, str] = {}
    for s in subjects:
        identity = content_identity(s.path)
        if identity in seen:
            raise StudyError(f"{where}: subjects {seen[identity]} and {s.id} have the same bundle (the same "
                             "fMRI and brain model); a study needs each subject's own")
        seen[identity] = s.id


def write_study(folder: str | Path, subjects: dict[str, str | Path], *, name: str, match: str,
                **extra: Any) -> Path:
    """Write ``folder/study.json`` atomically; bundle paths inside ``folder`` are stored relative."""
    from brainview.cortex.roi_io import write_atomic

    folder = Path(folder).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for subject_id, bundle in subjects.items():
        bundle = Path(bundle).absolute()
        try:
            shown = str(bundle.relative_to(folder))
        except ValueError:
            shown = str(bundle)
        entries.append({"id": subject_id, "bundle": shown})
    payload = {"format": FORMAT, "version": VERSION, "name": name, "match": match, "subjects": entries, **extra}
    return write_atomic(folder / STUDY_FILE, (json.dumps(payload, indent=2) + "\n").encode("utf-8"))


def mean_and_spread(values: list[float | None]) -> dict[str, Any]:
    """Mean, standard deviation (n - 1), min and max over subjects of a figure (None values left out)."""
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not kept:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    arr = np.asarray(kept)
    return {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "min": float(arr.min()), "max": float(arr.max()), "n": len(kept)}


def summarize_evaluations(evaluations: dict[str, dict]) -> dict[str, Any]:
    """The mean and spread across subjects of every retrieval top-1 and caption metric of
    ``brainview eval`` results (one per subject)."""
    out: dict[str, Any] = {"retrieval": {}, "captioning": {}}
    first = next(iter(evaluations.values()))
    for direction in first["retrieval"]:
        out["retrieval"][direction] = mean_and_spread(
            [e["retrieval"].get(direction, {}).get("top1") for e in evaluations.values()])
    for metric in first["captioning"]:
        out["captioning"][metric] = mean_and_spread([e["captioning"].get(metric) for e in evaluations.values()])
    return out


def evaluation_summary(result: dict) -> dict[str, Any]:
    """The figures the subjects panel shows of one ``brainview eval`` result: top-1 per direction and METEOR."""
    retrieval = {k: v.get("top1") for k, v in result.get("retrieval", {}).items()}
    pool = next((v.get("pool") for v in result.get("retrieval", {}).values()), None)
    return {"retrieval": retrieval, "pool": pool, "meteor": result.get("captioning", {}).get("meteor")}

