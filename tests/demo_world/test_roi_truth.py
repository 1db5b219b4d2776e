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
