"""``brainview search | classify | localize``: prompt ensembles and the vocabulary warning, through the real tiny models."""

from __future__ import annotations

import json

import pytest

from brainview.cli import main
from tests.factories import make_captioned_bundle


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    return make_captioned_bundle(tmp_path_factory.mktemp("lang_cli_q"), n_trials=12)


def run(capsys, *argv):
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_search_warns_about_words_the_encoder_never_saw(capsys, captioned):
    result = json.loads(run(capsys, "search", str(captioned.path), "a photo of trial 3", "--json"))
    assert result["unknown_words"] == {"photo": list("photo")} and result["prompts"] == ["a photo of trial 3"]
    assert "warning: 'photo' (p·h·o·t·o): not one token of the text encoder" in run(
        capsys, "search", str(captioned.path), "a photo of trial 3")
    known = json.loads(run(capsys, "search", str(captioned.path), "caption 1 of trial 3", "--json"))
    assert known["unknown_words"] == {}
    assert "warning" not in run(capsys, "search", str(captioned.path), "caption 1 of trial 3")


def test_classify_names_the_labels_with_unknown_words(capsys, captioned):
    result = json.loads(run(capsys, "classify", str(captioned.path), "--labels", "0=caption 0;trial 0,1=a place",
                            "--json"))
    assert result["unknown_words"] == {"1": {"place": list("place")}}


def test_localize_takes_prompt_ensembles(capsys, tmp_path, captioned):
    versus = tmp_path / "versus.txt"
    versus.write_text("one=caption 1;trial 1\ncaption 2\n")
    result = json.loads(run(capsys, "localize", str(captioned.path), "zero=caption 0;trial 0", "--versus",
                            f"@{versus}", "--no-captions", "--json"))
    assert result["phrase"] == "zero" and result["versus"] == ["one", "caption 2"]
    assert result["prompts"] == {"zero": ["caption 0", "trial 0"], "one": ["caption 1", "trial 1"],
                                 "caption 2": ["caption 2"]}
    assert result["measure"] == "log-odds" and result["unknown_words"] == {}


def test_a_broken_ensemble_fails_before_any_model_loads(capsys, captioned):
    assert main(["localize", str(captioned.path), "zero=", "--no-captions"]) == 2
    assert "no prompts" in capsys.readouterr().err
    assert main(["localize", str(captioned.path), "x", "--versus", "=y"]) == 2
    assert "no name" in capsys.readouterr().err
