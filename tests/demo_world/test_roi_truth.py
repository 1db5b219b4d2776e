"""The committed demo bundle's ROI table recovers the planted preferences (issue 3, "Done when").

Ground truth: training/demo_world/README.md, "Ground truth: what each ROI prefers". The rule
(``training/demo_world/roi_rule.py``): an ROI matches when the caption that ``brainview roi-table`` gives its
synthetic pattern (stage 2, the paper's analysis) contains one of the ROI's keywords, compared
word by word. The four category ROIs must all match (their captions name their category), and
at least 6 of the 8 ROIs must match.
"""

import json

from brainview.cli import main
from brainview.paths import demo_bundle_path
from training.demo_world.roi_rule import CATEGORY_ROIS, KEYWORDS, matches


def test_keyword_rule_itself():
    assert matches("floc-faces", "a yellow smiley face in a room")
    assert not matches("floc-faces", "a red sign that says stop on a street")
    assert matches("floc-places", "an empty beach with a purple umbrella")
    assert not matches("floc-words", "a signpost")  # whole words only


def test_roi_table_recovers_the_planted_preferences(capsys):
    path = demo_bundle_path()
    assert (path / "manifest.json").is_file(), f"the demo bundle is missing at {path}"
    assert main(["roi-table", str(path), "--stage", "2", "--device", "cpu", "--json"]) == 0
    rois = json.loads(capsys.readouterr().out)["rois"]
    assert set(KEYWORDS) <= set(rois)
    hits = {roi: matches(roi, rois[roi]["caption"]) for roi in KEYWORDS}
    table = "\n".join(f"{roi:12} {'ok ' if hit else 'NO '} {rois[roi]['caption']}" for roi, hit in hits.items())
    assert all(hits[roi] for roi in CATEGORY_ROIS), table
    assert sum(hits.values()) >= 6, table


def test_every_subject_of_the_demo_study(capsys):
    """The same rule for every subject of the built demo study (issue 16). The study is built once per
    machine (minutes), so this runs where ``BRAINVIEW_DEMO_STUDY`` names its study.json."""
    import os

    import pytest

    from brainview.analysis.study import load_study

    file = os.environ.get("BRAINVIEW_DEMO_STUDY")
    if not file:
        pytest.skip("BRAINVIEW_DEMO_STUDY does not name a built demo study (python -m training.demo_world study)")
    study = load_study(file)
    assert main(["roi-table", file, "--stage", "2", "--device", "cpu", "--json"]) == 0
    subjects = json.loads(capsys.readouterr().out)["subjects"]
    assert list(subjects) == study.ids and len(study.ids) == 4
    report = "\n".join(f"{s} {roi:12} {rois[roi]['caption']}" for s, rois in subjects.items() for roi in KEYWORDS)
    for subject, rois in subjects.items():
        assert all(matches(roi, rois[roi]["caption"]) for roi in CATEGORY_ROIS), f"{subject}\n{report}"
        assert sum(matches(roi, rois[roi]["caption"]) for roi in KEYWORDS) >= 6, f"{subject}\n{report}"


def test_manifold_captions_name_at_least_as_many_rois_as_the_paper(capsys):
    """Issue 26: captions on the natural-image manifold (the region's forward-model direction projected
    on the test images' tokens) recover the planted preferences at least as often as the paper's pattern."""
    path = str(demo_bundle_path())
    hits = {}
    for method in ("paper", "manifold"):
        assert main(["roi-table", path, "--method", method, "--device", "cpu", "--json"]) == 0
        rois = json.loads(capsys.readouterr().out)["rois"]
        hits[method] = {roi: matches(roi, rois[roi]["caption"]) for roi in KEYWORDS}
    assert all(hits["manifold"][roi] for roi in CATEGORY_ROIS), hits
    assert sum(hits["manifold"].values()) >= sum(hits["paper"].values()), hits


def test_heldout_prediction_ranks_both_methods_above_random_captions(capsys, tmp_path):
    """Issue 26, LaVCa's evaluation: a caption's text embedding predicts its ROI's response on held-out
    trials; the paper's and the manifold captions beat random reference captions (their intervals over
    the mean of the 8 ROIs lie above the random captions'), and the planted truth does best."""
    from training.demo_world.roi_rule import TRUTH_CAPTIONS

    (tmp_path / "truth.json").write_text(json.dumps(TRUTH_CAPTIONS))
    assert main(["roi-table", str(demo_bundle_path()), "--evaluate", "--truth", str(tmp_path / "truth.json"),
                 "--device", "cpu", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["evaluation"]["summary"]
    random_high = summary["random"]["ci95"][1]
    for method in ("paper", "manifold", "data"):
        assert summary[method]["ci95"][0] > random_high, summary
    assert summary["truth"]["mean_r"] > max(summary[m]["mean_r"] for m in ("paper", "manifold")), summary


def test_manifold_captions_in_every_subject_of_the_demo_study(capsys):
    """Issue 26 across subjects: the manifold captions name each subject's category areas, and at least as
    many ROIs as the paper's pattern. Runs where ``BRAINVIEW_DEMO_STUDY`` names a built demo study."""
    import os

    import pytest

    file = os.environ.get("BRAINVIEW_DEMO_STUDY")
    if not file:
        pytest.skip("BRAINVIEW_DEMO_STUDY does not name a built demo study (python -m training.demo_world study)")
    hits = {}
    for method in ("paper", "manifold"):
        assert main(["roi-table", file, "--method", method, "--device", "cpu", "--json"]) == 0
        subjects = json.loads(capsys.readouterr().out)["subjects"]
        hits[method] = {s: {roi: matches(roi, rois[roi]["caption"]) for roi in KEYWORDS} for s, rois in subjects.items()}
    for subject, manifold in hits["manifold"].items():
        assert all(manifold[roi] for roi in CATEGORY_ROIS), (subject, hits)
        assert sum(manifold.values()) >= sum(hits["paper"][subject].values()), (subject, hits)
