"""The reduced demo build end to end: one command from nothing to a valid, evaluated bundle."""

import json

import numpy as np

from training.demo_world.subject import ROI_NAMES


def test_bundle_is_complete_and_consistent(small_bundle):
    bundle = small_bundle
    manifest = json.loads((bundle.path / "manifest.json").read_text())
    assert bundle.n_trials == 60 and bundle.fmri.dtype == np.float16
    assert bundle.stimuli.shape == (60, 64, 64, 3)
    assert all(len(c) == 5 for c in bundle.captions)
    assert len(bundle.text_index) == 300
    assert set(bundle.rois) == set(ROI_NAMES)
    assert manifest["vlm"]["captioner"] == "vlm/captioner" and manifest["vlm"]["retrieval"] == "vlm/retrieval"
    assert (bundle.path / "vlm" / "captioner" / "config.json").is_file()
    trials = json.loads((bundle.path / "test" / "trials.json").read_text())
    assert trials[0]["id"] == "demo-0000" and trials[0]["scene"]["category"]
    # the held-out QA set: every test trial, asked about its own scene
    assert len(bundle.questions) == 60 and all(len(q) >= 7 for q in bundle.questions)
    colour = next(q for q in bundle.questions[0] if q["type"] == "colour")
    assert colour["answers"] == [trials[0]["scene"]["colour"]]
    # the test split is z-scored with training statistics, so it is roughly but not exactly standard
    assert abs(float(np.mean(bundle.fmri))) < 0.2 and 0.7 < float(np.std(bundle.fmri.astype(np.float32))) < 1.3


def test_provenance_and_metrics_are_recorded(small_bundle):
    manifest = json.loads((small_bundle.path / "manifest.json").read_text())
    provenance, metrics = manifest["provenance"], manifest["metrics"]
    assert provenance["seed"] == 0 and provenance["size"] == "small"
    assert provenance["splits"] == {"train": 400, "val": 60, "test": 60}
    assert {"scenes", "vlm", "targets", "fmri", "stage1", "stage2", "bundle", "evaluate", "total"} <= set(
        provenance["timings_s"])
    for stage in ("stage1", "stage2"):
        top1 = metrics[stage]["retrieval"]["image_given_brain"]["top1"]
        assert 0.0 <= top1 <= 1.0
    assert metrics["stage2"]["retrieval"]["text_given_brain"]["pool"] == 60
    assert set(metrics["roi_table"]) == set(ROI_NAMES)
    assert manifest["synthetic"]["scale"] > 0
    qa = metrics["stage2"]["qa"]
    assert set(qa) <= {"colour", "kind", "category", "place", "count", "position", "text", "size"}
    assert {"colour", "kind", "place"} <= set(qa) and qa["colour"]["n"] == 60
    assert all(0 <= q["accuracy"] <= 1 and 0 <= q["image_accuracy"] <= 1 for q in qa.values())
    assert provenance["bundle_bytes"] < 30 * 2 ** 20
