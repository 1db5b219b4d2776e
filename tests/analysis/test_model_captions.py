"""Other models' captions on a bundle's trials: matched by key, every missing, extra and empty entry reported."""

from __future__ import annotations

import json

import pytest

from brainview.analysis.model_captions import load_model_captions, match_captions
from brainview.errors import UserError

TRIALS = [{"id": "nsd02950", "nsd_id": 2950}, {"id": "nsd00073", "nsd_id": 73}, {"id": "nsd10007", "nsd_id": 10007}]


def test_missing_extra_and_empty_entries_are_reported_not_shifted(tmp_path):
    path = tmp_path / "umbrae.json"
    path.write_text(json.dumps({"nsd00073": "two zebras", "nsd10007": "", "nsd99999": "an extra one"}))
    model = match_captions("UMBRAE", str(path), TRIALS)
    assert model.matched_by == "trial id"
    assert model.captions == [None, "two zebras", ""]
    assert model.missing == ["nsd02950"] and model.extra == ["nsd99999"] and model.empty == ["nsd10007"]
    problems = " ".join(model.problems())
    assert "no caption for 1 trials (nsd02950)" in problems and "nsd99999" in problems and "1 empty" in problems


def test_brainhub_positions_follow_ascending_nsd_id(tmp_path):
    path = tmp_path / "braincap.json"
    path.write_text(json.dumps({"2": "third nsd_id", "0": "smallest nsd_id", "1": "middle nsd_id"}))
    model = match_captions("BrainCap", str(path), TRIALS)
    assert model.captions == ["middle nsd_id", "smallest nsd_id", "third nsd_id"]
    assert "ascending nsd_id" in model.matched_by and not model.problems()


def test_csv_matches_by_nsd_id(tmp_path):
    path = tmp_path / "stage2.csv"
    path.write_text("nsd_id,caption\n10007,a bus\n2950,a wave\n")
    model = match_captions("paper", str(path), TRIALS)
    assert model.captions == ["a wave", None, "a bus"] and model.missing == ["nsd00073"]


def test_a_file_that_matches_nothing_is_a_user_error(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"demo-0000": "a cat"}))
    with pytest.raises(UserError, match="none of its 1 entries matches"):
        match_captions("other", str(path), TRIALS)


@pytest.mark.parametrize("specs,fragment", [(["UMBRAE"], "NAME=FILE"), (["A=/no/file.json"], "does not exist")])
def test_bad_specs_are_user_errors(specs, fragment):
    with pytest.raises(UserError, match=fragment):
        load_model_captions(specs, TRIALS)
