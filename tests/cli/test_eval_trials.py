"""``eval`` on a slow machine: ``--trials N`` (a seeded subset, stated), progress on stderr, partial results
kept on Ctrl-C; ``--cpu-precision`` checked like every option."""

from __future__ import annotations

import json

import pytest

from brainview.cli import main
from tests.factories import make_captioned_bundle


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    return make_captioned_bundle(tmp_path_factory.mktemp("cli_trials"), n_trials=12)


def test_eval_on_a_seeded_subset_of_trials_says_so(capsys, captioned):
    assert main(["eval", str(captioned.path), "--repeats", "2", "--trials", "5", "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["trials"] == {"captioned": 5, "of": 12, "seed": 42, "partial": False}
    assert result["qa"]["colour"]["n"] == 5 and result["retrieval"]["image_given_brain"]["pool"] == 12
    assert "captions 5/5" in err
    assert main(["eval", str(captioned.path), "--repeats", "2", "--trials", "5", "--seed", "7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trials"]["seed"] == 7


def test_ctrl_c_while_captioning_keeps_what_was_captioned_marked_partial(capsys, captioned, monkeypatch):
    from brainview.analysis import caption_pass
    from brainview.decoding.decoder import Decoder

    real, calls = Decoder.captions, []

    def interrupted_on_the_second_batch(self, tokens, *args, **kwargs):
        calls.append(len(tokens))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, tokens, *args, **kwargs)

    monkeypatch.setattr(caption_pass, "BATCH", 4)
    monkeypatch.setattr(Decoder, "captions", interrupted_on_the_second_batch)
    assert main(["eval", str(captioned.path), "--repeats", "2", "--json"]) == 130
    result = json.loads(capsys.readouterr().out)
    assert result["trials"] == {"captioned": 4, "of": 12, "seed": 42, "partial": True}
    assert isinstance(result["captioning"]["rouge1"], float) and "Ctrl-C" in result["missing"]["qa"]


@pytest.mark.parametrize("argv", [["--cpu-precision", "int4"], ["--trials", "0"]])
def test_bad_options_exit_with_status_2(capsys, captioned, argv):
    with pytest.raises(SystemExit) as exited:
        status = main(["eval", str(captioned.path), *argv])
        raise SystemExit(status)
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip()
