"""Caption files as the field ships them: BrainHub's numeric keys, newlines, empty captions, the MICCAI CSV."""

from __future__ import annotations

import json

import pytest

from brainview.analysis.caption_files import align, read_predictions, read_references
from brainview.errors import UserError


def test_brainhub_keys_sort_as_numbers_and_captions_are_flattened(tmp_path):
    captions = {str(k): f"caption {k}" for k in range(12)}
    captions["10"] = "a dog\non the grass"
    captions["3"] = ""
    (tmp_path / "pred.json").write_text(json.dumps(captions))
    refs = {str(k): [f"ref {k}", f"other {k}"] for k in reversed(range(12))}
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    pred = read_predictions(str(tmp_path / "pred.json"))
    assert pred.kind == "position" and pred.keys[9:12] == ["9", "10", "11"]
    keys, caps, references = align(pred, read_references(str(tmp_path / "refs.json")))
    assert caps[10] == "a dog on the grass" and caps[3] == "" and caps[11] == "caption 11"
    assert references[10] == ["ref 10", "other 10"] and len(caps) == 12


def test_empty_lines_keep_their_place(tmp_path):
    (tmp_path / "pred.txt").write_text("a cat\n\na dog\n\n")
    pred = read_predictions(str(tmp_path / "pred.txt"))
    assert pred.values == ["a cat", "", "a dog"]


def test_miccai_csv_carries_its_references(tmp_path):
    (tmp_path / "stage2.csv").write_text(
        'nsd_id,caption,true_captions\n'
        '2950,a man riding a wave,"[\'a surfer on a wave\', \'a man surfing\']"\n'
        '73,"two zebras\nin a field","[""zebras grazing"", ""two zebras""]"\n')
    pred = read_predictions(str(tmp_path / "stage2.csv"))
    refs = read_references(str(tmp_path / "stage2.csv"))
    assert pred.kind == refs.kind == "nsd_id" and pred.keys == ["2950", "73"]
    keys, caps, references = align(pred, refs)
    assert caps == ["a man riding a wave", "two zebras in a field"]
    assert references == [["a surfer on a wave", "a man surfing"], ["zebras grazing", "two zebras"]]


def test_a_missing_key_is_named_never_shifted(tmp_path):
    (tmp_path / "pred.json").write_text(json.dumps({"0": "a", "2": "c", "3": "d"}))
    (tmp_path / "refs.json").write_text(json.dumps([["a"], ["b"], ["c"]]))
    with pytest.raises(UserError, match=r"no caption for 1 of 3 images \(1\).*1 captions have no references \(3\)"):
        align(read_predictions(str(tmp_path / "pred.json")), read_references(str(tmp_path / "refs.json")))


def test_caption_that_is_not_text_is_a_user_error(tmp_path):
    (tmp_path / "pred.json").write_text(json.dumps({"0": "a", "1": None}))
    with pytest.raises(UserError, match="must hold captions"):
        read_predictions(str(tmp_path / "pred.json"))
