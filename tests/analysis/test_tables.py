"""CSV tables: the per-trial table, the ROI table and retrieval results round-trip through pandas with
the right types, from the core and from ``brainview table``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainview.analysis.tables import retrieval_table, roi_table, text_ranks, trial_table, write_csv
from brainview.cli import main
from brainview.decoding.retrieval import first_true_ranks, rank_of


@pytest.fixture(scope="module")
def scored(app_bundle):
    """A headless session on the captioned app bundle, every trial captioned and scored (ROUGE-L only)."""
    from brainview.state.session import Session, finish, load

    session = Session()
    session.score_metrics = ("rougeL",)
    session.set_loaded(load(app_bundle.path, device="cpu"))
    session.set_caption_scores(finish(session.iter_caption_scores()))
    return session


def test_first_true_ranks_counts_false_candidates_above_the_best_true():
    scores = np.array([[0.9, 0.8, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4]])
    true = np.array([[False, True, True, False], [True, False, False, False]])
    assert first_true_ranks(scores, true).tolist() == [2, 4]
    # one true candidate per row: the same as rank_of
    assert first_true_ranks(scores[1:], true[1:])[0] == rank_of(scores[1], 0)


def test_trial_table_round_trips_through_pandas(scored, tmp_path):
    path = write_csv(tmp_path / "trials.csv", trial_table(scored))
    frame = pd.read_csv(path)
    n = scored.n_trials
    assert len(frame) == n
    assert frame["trial"].tolist() == [scored.trial_id(t) for t in range(n)]
    assert frame["index"].dtype == np.int64
    assert frame["reference_1"].tolist() == [scored.references(t)[0] for t in range(n)]
    for stage in ("s1", "s2"):
        assert pd.api.types.is_string_dtype(frame[f"caption_{stage}"])
        assert frame[f"rougeL_{stage}"].dtype == np.float64
        assert frame[f"image_rank_{stage}"].dtype == np.int64
    assert frame["caption_s2"].tolist() == [scored.caption("stage2", t) for t in range(n)]
    np.testing.assert_allclose(frame["rougeL_s1"], scored.scores["stage1"]["rougeL"])
    assert frame["image_rank_s2"].tolist() == scored.scores["stage2"]["image_rank"].astype(int).tolist()
    assert "text_rank_s1" not in frame and frame["text_rank_s2"].dtype == np.int64
    assert "meteor_s1" not in frame  # never computed: no empty column


def test_text_rank_is_the_rank_of_the_best_own_caption(scored):
    from brainview.decoding.retrieval import text_scores

    ranks = text_ranks(scored, "stage2")
    model, bundle = scored.decoder.model, scored.bundle
    trial = 3
    scores = text_scores(model.project_text(scored.decoder.tokens_for_trials([trial], "stage2")),
                         bundle.text_embeddings)[0]
    own = bundle.text_index[:, 0] == trial
    assert ranks[trial] == 1 + int((scores[~own] > scores[own].max()).sum())
    assert text_ranks(scored, "stage1") is None


def test_roi_and_retrieval_tables(scored, tmp_path):
    bundle = scored.bundle
    frame = pd.read_csv(write_csv(tmp_path / "rois.csv", roi_table(bundle, {"stage2": {"V1": "a face", "V2": "x"}})))
    assert frame["roi"].tolist() == list(bundle.rois) and frame["n_voxels"].dtype == np.int64
    assert frame.set_index("roi").loc["V1", "caption_s2"] == "a face"
    decoded = scored.retrieve(trial=2, stage="stage2", k=4)
    frame = pd.read_csv(write_csv(tmp_path / "retrieval.csv", retrieval_table(scored, decoded, 2)))
    assert frame["kind"].tolist() == ["image"] * 4 + ["caption"] * 4
    assert frame["rank"].tolist() == [1, 2, 3, 4] * 2 and frame["score"].dtype == np.float64
    assert frame["is_true"].dtype == bool
    images = frame[frame["kind"] == "image"]
    assert images["is_true"].tolist() == [scored.trial_id(int(i)) == scored.trial_id(2) for i in decoded.images.indices]


def test_cli_table_writes_every_column(app_bundle, tmp_path, capsys):
    out = tmp_path / "trials.csv"
    assert main(["table", str(app_bundle.path), "--out", str(out), "--device", "cpu"]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == app_bundle.n_trials
    assert {"trial", "reference_1", "caption_s1", "caption_s2", "image_rank_s1", "text_rank_s2"} <= set(frame)
    assert frame["rougeL_s2"].dtype == np.float64 and frame["image_rank_s1"].dtype == np.int64
    out = tmp_path / "fast.csv"
    assert main(["table", str(app_bundle.path), "--out", str(out), "--no-captions"]) == 0
    assert "caption_s1" not in pd.read_csv(out)


def test_cli_table_rois_and_retrieval(app_bundle, tmp_path):
    out = tmp_path / "rois.csv"
    assert main(["table", str(app_bundle.path), "--what", "rois", "--out", str(out), "--device", "cpu"]) == 0
    frame = pd.read_csv(out)
    assert frame["caption_s2"].map(type).eq(str).all()
    trial_id = app_bundle.trials[5]["id"]
    out = tmp_path / "retrieval.csv"
    assert main(["table", str(app_bundle.path), "--what", "retrieval", "--trial", trial_id, "--k", "3",
                 "--no-captions", "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 6


@pytest.mark.parametrize("argv, message", [
    (["--out", "x.txt"], "must name a .csv"),
    (["--what", "retrieval", "--trial", "nope", "--no-captions", "--out", "x.csv"], "no trial 'nope'"),
])
def test_cli_table_user_errors(app_bundle, tmp_path, capsys, argv, message):
    assert main(["table", str(app_bundle.path), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
