"""The headless command line: JSON contracts, exit status 2 with one message for user errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from brainview.cli import main
from tests.factories import make_bundle, make_captioned_bundle


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    return make_captioned_bundle(tmp_path_factory.mktemp("cli"), n_trials=12)


@pytest.fixture(scope="module")
def no_vlm(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("cli_novlm") / "bundle", n_trials=30)


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "brainview", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("open", "info", "eval", "ask", "roi-table", "score", "screenshot"):
        assert command in out


def test_info_summarizes(capsys, captioned):
    info = run_json(capsys, "info", str(captioned.path))
    assert info["valid"] and info["n_trials"] == 12 and info["stages"] == ["stage1", "stage2"]
    assert info["rois"] == {"V1": 15, "V2": 15, "FFA-1": 30}


def test_eval_reports_every_direction_and_caption_metrics(capsys, captioned):
    result = run_json(capsys, "eval", str(captioned.path), "--repeats", "3")
    assert result["stage"] == 2
    for direction in ("image_given_brain", "brain_given_image", "text_given_brain", "brain_given_text"):
        assert result["retrieval"][direction]["pool"] == 12
        assert result["retrieval"][direction]["repeats"] == 3
    assert result["retrieval"]["image_given_brain"]["top1"] == pytest.approx(1.0)
    assert result["retrieval"]["text_given_brain"]["top1"] == pytest.approx(1.0)
    assert set(result["captioning"]) == {"meteor", "rouge1", "rougeL", "sentence", "clip_b", "clip_l"}
    assert isinstance(result["captioning"]["rouge1"], float)
    assert result["captioning"]["clip_b"] is None and "clip_b" in result["missing"]


def test_eval_reports_questions_per_type_from_brain_and_image(capsys, captioned):
    from brainview.decoding.decoder import Decoder
    from brainview.decoding.questions import is_correct

    qa = run_json(capsys, "eval", str(captioned.path), "--repeats", "2")["qa"]
    assert set(qa) == {"colour", "place"}
    assert qa["colour"]["n"] == qa["place"]["n"] == 12
    assert qa["colour"]["chance"] == 0.5 and qa["place"]["chance"] == pytest.approx(4 / 12)
    decoder = Decoder.load(captioned, device="cpu")
    tokens = decoder.tokens_for_trials(range(12), "stage2")
    for kind, column in (("colour", 0), ("place", 1)):
        items = [q[column] for q in captioned.questions]
        asked = [item["question"] for item in items]
        for source, key in ((tokens, "accuracy"), (captioned.image_embeddings, "image_accuracy")):
            answers = decoder.answers(source, asked)
            expected = sum(is_correct(a, item["answers"]) for a, item in zip(answers, items)) / 12
            assert qa[kind][key] == pytest.approx(expected)
        lo, hi = qa[kind]["ci95"]
        assert 0 <= lo <= qa[kind]["accuracy"] <= hi <= 1


def test_eval_without_a_question_set_says_so(capsys, no_vlm):
    result = run_json(capsys, "eval", str(no_vlm.path), "--repeats", "2", "--no-captions")
    assert result["qa"] == {} and "question-answer set" in result["missing"]["qa"]


def test_ask_answers_from_the_brain_pattern_and_the_true_image_tokens(capsys, captioned):
    from brainview.decoding.decoder import Decoder

    decoder = Decoder.load(captioned, device="cpu")
    question = "what colour is it?"
    answer = run_json(capsys, "ask", str(captioned.path), "--trial", "t0003", question)
    assert answer["trial"] == "t0003" and answer["question"] == question and answer["stage"] == 2
    assert answer["answer"] == decoder.answers(decoder.tokens_for_trials([3], "stage2"), [question])[0]
    assert answer["image_answer"] == decoder.answers(captioned.image_embeddings[[3]], [question])[0]
    stage1 = run_json(capsys, "ask", str(captioned.path), "--trial", "t0003", question, "--stage", "1",
                      "--from", "brain")
    assert stage1["image_answer"] is None
    assert stage1["answer"] == decoder.answers(decoder.tokens_for_trials([3], "stage1"), [question])[0]
    image_only = run_json(capsys, "ask", str(captioned.path), "--trial", "t0003", question, "--from", "image")
    assert image_only["answer"] is None and image_only["image_answer"] == answer["image_answer"]
    assert main(["ask", str(captioned.path), "--trial", "t0003", question]) == 0
    out = capsys.readouterr().out
    assert "brain pattern" in out and "true image tokens" in out


def test_eval_stage1_has_no_text_directions(capsys, no_vlm):
    result = run_json(capsys, "eval", str(no_vlm.path), "--stage", "1", "--no-captions", "--repeats", "2")
    assert set(result["retrieval"]) == {"image_given_brain", "brain_given_image"}


def test_eval_without_language_models_still_retrieves(capsys, no_vlm):
    result = run_json(capsys, "eval", str(no_vlm.path), "--repeats", "2")
    assert result["retrieval"]["brain_given_text"]["top1"] == pytest.approx(1.0)
    assert all(v is None for v in result["captioning"].values())
    assert "captioner" in result["missing"]["meteor"]


def test_roi_table_captions_every_roi(capsys, captioned):
    table = run_json(capsys, "roi-table", str(captioned.path))
    assert list(table["rois"]) == ["V1", "V2", "FFA-1"]
    assert all(isinstance(r["caption"], str) for r in table["rois"].values())
    assert table["rois"]["FFA-1"]["n_voxels"] == 30


def test_score_matches_the_reference_libraries(capsys, tmp_path):
    from nltk.translate.meteor_score import meteor_score
    from rouge_score import rouge_scorer

    from brainview.decoding.metric_resources import load_wordnet

    preds = ["a dog runs on the grass", "a red stop sign near a street"]
    refs = [["a dog running across a green field", "a brown dog on grass"],
            ["a stop sign on a street corner", "a red sign that says stop"]]
    (tmp_path / "pred.txt").write_text("\n".join(preds) + "\n")
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    result = run_json(capsys, "score", "--pred", str(tmp_path / "pred.txt"), "--refs", str(tmp_path / "refs.json"))
    wordnet = load_wordnet()
    meteor = sum(meteor_score([r.split() for r in rs], p.split(), wordnet=wordnet) for p, rs in zip(preds, refs)) / 2
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"])
    rouge1 = sum(max(scorer.score(r, p)["rouge1"].fmeasure for r in rs) for p, rs in zip(preds, refs)) / 2
    assert result["metrics"]["meteor"] == pytest.approx(meteor, abs=0.01)
    assert result["metrics"]["rouge1"] == pytest.approx(rouge1, abs=0.01)


@pytest.mark.parametrize("argv,fragment", [
    (["info", "/no/such/bundle"], "does not exist"),
    (["eval", "{broken}"], "test/fmri.npy"),
    (["eval", "{novlm}", "--stage", "2", "--repeats", "0"], "--repeats"),
    (["score", "--pred", "/no/pred.txt", "--refs", "/no/refs.json"], "does not exist"),
    (["roi-table", "{novlm}"], "cannot caption"),
    (["open", "/no/such/bundle"], "does not exist"),
    (["ask", "{novlm}", "--trial", "t0000", "what is this?"], "cannot answer questions"),
    (["ask", "{novlm}", "--trial", "nope", "what is this?"], "no trial 'nope'"),
    (["ask", "{novlm}", "--trial", "t0000", "  "], "the question is empty"),
])
def test_user_errors_exit_2_with_one_line(capsys, tmp_path, no_vlm, argv, fragment):
    import shutil

    import numpy as np

    broken = tmp_path / "broken"
    shutil.copytree(no_vlm.path, broken)
    np.save(broken / "test/fmri.npy", np.zeros((30, 5), np.float32))
    argv = [a.format(broken=broken, novlm=no_vlm.path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


def test_score_rejects_mismatched_lengths(capsys, tmp_path):
    (tmp_path / "p.txt").write_text("one\ntwo\n")
    (tmp_path / "r.json").write_text(json.dumps([["one"]]))
    assert main(["score", "--pred", str(tmp_path / "p.txt"), "--refs", str(tmp_path / "r.json")]) == 2
    assert "2 predictions" in capsys.readouterr().err


def _copy_with_name(tmp_path, bundle, name):
    import shutil

    path = tmp_path / "named"
    shutil.copytree(bundle.path, path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["name"] = name
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def test_a_closed_pipe_ends_quietly(no_vlm):
    """``brainview info | head -1``: the reader goes away; no BrokenPipe traceback."""
    done = subprocess.run(f"{sys.executable} -m brainview info {no_vlm.path} | head -c 10", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_names_cannot_drive_the_terminal(capsys, tmp_path, no_vlm):
    path = _copy_with_name(tmp_path, no_vlm, "\x1b[2J\x1b[31mred\rname\x07")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out and "\\x1b[31mred" in out
    assert main(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "\x1b[2J\x1b[31mred\rname\x07"


def test_a_lone_surrogate_is_refused_in_one_line(capsys, tmp_path, no_vlm):
    path = _copy_with_name(tmp_path, no_vlm, "x")
    (path / "manifest.json").write_text((path / "manifest.json").read_text().replace('"x"', '"\\ud800 x"'))
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "lone UTF-16 surrogate" in err


def test_eval_with_a_broken_captioner_says_so(capsys, tmp_path, captioned):
    import shutil

    path = tmp_path / "broken_vlm"
    shutil.copytree(captioned.path, path)
    (path / "vlm" / "captioner" / "model.safetensors").write_bytes(b"not weights")
    assert main(["eval", str(path), "--repeats", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot caption with the bundle's captioner" in err and "--no-captions" in err
    result = run_json(capsys, "eval", str(path), "--repeats", "1", "--no-captions")
    assert result["retrieval"]["image_given_brain"]["top1"] == 1.0


def test_a_single_trial_bundle_evaluates(capsys, tmp_path):
    single = make_bundle(tmp_path / "single", n_trials=1, n_voxels=20, subdivisions=1)
    result = run_json(capsys, "eval", str(single.path), "--repeats", "2", "--no-captions")
    assert result["retrieval"]["image_given_brain"]["pool"] == 1


def test_a_prompt_with_image_tokens_turns_captions_off_with_the_reason(capsys, tmp_path, captioned):
    import shutil

    path = tmp_path / "prompted"
    shutil.copytree(captioned.path, path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["vlm"]["prompt"] = "<image>" * 50
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert main(["eval", str(path), "--repeats", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "image token" in err
