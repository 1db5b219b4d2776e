"""A seeded fuzz of study files, and the study checks of issue 25: a subject cap for folders too, the
same bundle under two ids refused, ``match`` checked at load, names safe on the terminal."""

from __future__ import annotations

import copy
import json
import math
import random
import shutil

import pytest

from brainview.analysis.study import MAX_SUBJECTS, StudyError, load_study
from brainview.errors import UserError
from tests.factories import json_paths, make_distinct

HOSTILE = ["abc", "", " ", -1, 0, 1.5, math.nan, math.inf, 2**63, True, None, [], {}, [{}], ["x"], {"a": 1},
           "x" * 5000, "../..", "/dev/zero", "/proc/self", "subj01", "subj02", "\u202egnp.exe", "nsd_id", "id",
           "no_such_field", [{"id": "s", "bundle": "subj01"}, {"id": "t", "bundle": "subj01"}]]




def mutate(document: dict, rng: random.Random) -> dict:
    document = copy.deepcopy(document)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice([p for p, _ in json_paths(document) if p])
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if rng.random() < 0.15 and isinstance(parent, dict):
            del parent[path[-1]]
        elif rng.random() < 0.1 and isinstance(parent, list):
            parent.append(copy.deepcopy(rng.choice(parent)))
        else:
            parent[path[-1]] = rng.choice(HOSTILE)
    return document


@pytest.mark.timeout(120)
def test_study_fuzz_one_message_or_a_whole_study(study_file):
    good = json.loads(study_file.read_text())
    folder = study_file.parent
    rng = random.Random(25)
    outcomes = {"refused": 0, "loaded": 0}
    for i in range(300):
        bad = mutate(good, rng)
        path = folder / f"m{i}.json"
        path.write_text(json.dumps(bad))
        try:  # what `brainview open STUDY` checks before a window exists
            study = load_study(path)
            for subject in study.ids:
                study.bundle(subject)
        except UserError as exc:
            assert "\n" not in str(exc) and str(exc), (i, bad)
            outcomes["refused"] += 1
        else:  # a study that opens is whole: its stimuli match across subjects
            assert study.stimuli.keys
            outcomes["loaded"] += 1
        finally:
            path.unlink()
    assert load_study(study_file).ids == ["subj01", "subj02", "subj05"]  # the good study still loads
    print(f"fuzz outcomes: {outcomes}")  # shown with -s
    assert outcomes["refused"] > 150 and outcomes["loaded"] > 0, outcomes


def test_the_same_bundle_under_two_ids_is_refused(study_file, tmp_path):
    document = json.loads(study_file.read_text())
    document["subjects"].append({"id": "subj09", "bundle": str(study_file.parent / "subj01")})
    twice = study_file.parent / "twice.json"
    twice.write_text(json.dumps(document))
    with pytest.raises(StudyError, match="subjects subj01 and subj09 have the same bundle"):
        load_study(twice)
    twice.unlink()
    shutil.copytree(study_file.parent / "subj01", tmp_path / "a")
    shutil.copytree(study_file.parent / "subj01", tmp_path / "b")  # a copy under another name
    with pytest.raises(StudyError, match="same bundle"):
        load_study(tmp_path)
    make_distinct(tmp_path / "b")
    assert load_study(tmp_path).ids == ["a", "b"]


def test_match_is_checked_at_load(study_file):
    document = json.loads(study_file.read_text())
    document["match"] = "no_such_field"
    file = study_file.parent / "match.json"
    file.write_text(json.dumps(document))
    try:
        with pytest.raises(StudyError, match="have no 'no_such_field'"):
            load_study(file)
    finally:
        file.unlink()


def test_a_folder_of_too_many_bundles_is_refused_before_opening_them(tmp_path, monkeypatch):
    import brainview.analysis.study as study_module

    for i in range(MAX_SUBJECTS + 1):
        (tmp_path / f"s{i:03d}").mkdir()
        (tmp_path / f"s{i:03d}" / "manifest.json").write_text("{}")
    monkeypatch.setattr(study_module, "content_identity", lambda path: pytest.fail("a bundle was read"))
    with pytest.raises(StudyError, match=f"{MAX_SUBJECTS + 1} bundle folders; a study has at most {MAX_SUBJECTS}"):
        load_study(tmp_path)


def test_names_reach_the_terminal_without_bidirectional_overrides():
    from brainview.cli.output import terminal_text

    assert terminal_text("subj\u202e01\x1b[31m") == "subj\\u202e01\\x1b[31m"
