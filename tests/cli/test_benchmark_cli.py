"""``brainview score`` on BrainHub's files as they ship (published values) and ``brainview compare`` on the demo."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from brainview.cli import main
from brainview.paths import demo_bundle_path, demo_captions_dir

BRAINHUB = Path(__file__).resolve().parents[1] / "data" / "brainhub"
# BrainHub's README at d8880b2, subject 1, ×100
PUBLISHED = {
    "braincap": {"BLEU-1": 55.96, "BLEU-4": 14.51, "METEOR": 16.68, "ROUGE": 40.69, "CIDEr": 41.30},
    "sdrecon": {"BLEU-1": 36.21, "BLEU-4": 3.43, "METEOR": 10.03, "ROUGE": 25.13, "CIDEr": 13.83},
}


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR 1.5 needs Java (scripts/install_resources.sh)")
@pytest.mark.parametrize("method", sorted(PUBLISHED))
def test_brainhub_files_as_shipped_score_the_published_values(capsys, tmp_path, method):
    per_caption = tmp_path / "per_caption.csv"
    result = run_json(capsys, "score", "--pred", str(BRAINHUB / f"{method}_sub01_decoded_caption.json"),
                      "--refs", str(BRAINHUB / "fmri_cococap.json"), "--table", "brainhub",
                      "--per-caption", str(per_caption))
    columns = result["tables"]["brainhub"]["columns"]
    for name, published in PUBLISHED[method].items():
        assert columns[name] == pytest.approx(published, abs=0.05), name
    assert columns["SPICE"] is None and "CoreNLP" in result["missing"]["spice"]
    assert columns["CLIP-S"] is None and "images" in result["missing"]["clip_s"]
    rows = list(csv.DictReader(per_caption.open()))
    assert len(rows) == 982 and rows[10]["key"] == "10"
    rouge = sum(float(r["rouge_coco"]) for r in rows) / len(rows)
    assert rouge * 100 == pytest.approx(columns["ROUGE"], abs=1e-6)


def test_miccai_table_is_named_and_an_empty_caption_scores_zero(capsys, tmp_path):
    (tmp_path / "paper.csv").write_text(
        'nsd_id,caption,true_captions\n'
        '2950,a man riding a wave on a surfboard,"[\'a man riding a wave on a surfboard\', \'a surfer\']"\n'
        '73,,"[\'two zebras grazing in a field\']"\n')
    per_caption = tmp_path / "scores.json"
    result = run_json(capsys, "score", "--pred", str(tmp_path / "paper.csv"), "--table", "miccai",
                      "--per-caption", str(per_caption))
    assert result["n"] == 2 and "MICCAI" in result["tables"]["miccai"]["title"]
    scores = json.loads(per_caption.read_text())
    assert scores["key"] == ["2950", "73"] and scores["caption"][1] == ""
    assert scores["meteor"][1] == 0.0 and scores["meteor"][0] > 0.9
    assert result["metrics"]["meteor"] == pytest.approx(sum(scores["meteor"]) / 2)


def test_compare_on_the_demo_ranks_the_better_model_first(capsys, tmp_path):
    table = tmp_path / "trials.csv"
    result = run_json(capsys, "compare", str(demo_bundle_path()),
                      "--captions", f"shuffled={demo_captions_dir() / 'shuffled.json'}",
                      "--captions", f"nearest={demo_captions_dir() / 'nearest-neighbour.json'}",
                      "--table", "brainhub", "--csv", str(table))
    assert result["ranking"] == ["nearest", "shuffled"] and result["n_trials"] == 300
    cider = next(p for p in result["pairs"] if p["metric"] == "cider")
    assert (cider["a"], cider["b"]) == ("shuffled", "nearest")
    assert cider["significant"] and cider["ci95"][1] < 0
    low, high = result["scores"]["nearest"]["meteor15"]["ci95"]
    assert low <= result["scores"]["nearest"]["meteor15"]["mean"] <= high
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 300 and rows[0]["trial"] == "demo-0000" and "nearest cider" in rows[0]


def test_compare_reports_a_model_file_that_misses_trials(capsys, tmp_path):
    captions = json.loads((demo_captions_dir() / "nearest-neighbour.json").read_text())
    del captions["demo-0005"]
    captions["demo-9999"] = "a stray caption"
    (tmp_path / "partial.json").write_text(json.dumps(captions))
    assert main(["compare", str(demo_bundle_path()), "--captions", f"partial={tmp_path / 'partial.json'}",
                 "--captions", f"shuffled={demo_captions_dir() / 'shuffled.json'}"]) == 0
    out = capsys.readouterr().out
    assert "299 test trials (1 left out" in out and "no caption for 1 trials (demo-0005)" in out
    assert "1 entries match no test trial (demo-9999)" in out and "BrainHub" in out


@pytest.mark.parametrize("spec,fragment", [("UMBRAE", "NAME=FILE"), ("UMBRAE=/no/umbrae.json", "does not exist")])
def test_open_with_bad_captions_fails_before_any_window(capsys, spec, fragment):
    assert main(["open", str(demo_bundle_path()), "--captions", spec]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_compare_uses_the_captions_a_bundle_carries(capsys, tmp_path):
    from tests.factories import make_bundle

    bundle = make_bundle(tmp_path / "bundle", n_trials=20)
    (bundle.path / "models").mkdir()
    exact = {t["id"]: refs[0] for t, refs in zip(bundle.trials, bundle.captions)}
    (bundle.path / "models" / "exact.json").write_text(json.dumps(exact))
    (bundle.path / "models" / "blank.json").write_text(json.dumps({t["id"]: "purple engines" for t in bundle.trials}))
    result = run_json(capsys, "compare", str(bundle.path))
    assert [m["name"] for m in result["models"]] == ["blank", "exact"] and result["ranking"] == ["exact", "blank"]
    assert main(["compare", str(demo_bundle_path())]) == 2
    assert "no model captions" in capsys.readouterr().err
