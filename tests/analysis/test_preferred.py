"""Preferred stimuli from the data (issue 26): the demo's category ROIs are driven by their category,
beyond what random voxel sets of the same size give."""

import numpy as np
import pytest

from brainview.analysis.preferred import (WORDS, Labelling, category_fields, content_terms, preferred_stimuli,
                                          summary_terms)
from training.demo_world.roi_rule import CATEGORY_ROIS

CATEGORY_OF = {"floc-faces": "face", "floc-bodies": "person", "floc-places": "place", "floc-words": "sign"}


@pytest.fixture(scope="module")
def demo():
    from brainview.bundle import open_bundle
    from brainview.paths import demo_bundle_path

    return open_bundle(demo_bundle_path())


@pytest.mark.parametrize("roi", CATEGORY_ROIS)
def test_category_rois_prefer_their_category_beyond_random_voxels(demo, roi):
    found = preferred_stimuli(demo, demo.roi_voxels(roi), top=10)
    categories = [demo.trials[t]["scene"]["category"] for t in found.trials]
    assert categories.count(CATEGORY_OF[roi]) >= 7, categories
    check = found.check("scene.category")
    assert check.value == CATEGORY_OF[roi]
    assert check.enrichment > np.quantile(check.control, 0.95)
    assert check.p_value < 0.05
    # the top trials are the region's strongest responses, best first
    assert np.all(np.diff(found.response[found.trials]) <= 0)
    assert found.response[found.trials[-1]] >= np.sort(found.response)[-10]


def test_random_voxels_are_not_consistent(demo):
    """The control's own null: a random voxel set of the face area's size is not called consistent."""
    rng = np.random.default_rng(5)
    p_values = [preferred_stimuli(demo, rng.choice(demo.n_voxels, 48, replace=False), draws=100, seed=s)
                .check("scene.category").p_value for s in range(5)]
    assert np.median(p_values) > 0.2, p_values


def test_the_demo_trials_give_their_category_fields_and_caption_words(demo):
    fields = category_fields(demo.trials)
    assert "scene.category" in fields and "scene.place" in fields
    assert "scene.count" not in fields  # numbers are not categories
    found = preferred_stimuli(demo, demo.roi_voxels("floc-faces"), draws=20)
    assert [c.field for c in found.consistency][-1] == WORDS
    assert any("face" in term or "smil" in term for term, _ in found.words)


def test_word_summary_counts_trials_and_discounts_words_every_caption_has():
    captions = [["a red face in a room", "a face"], ["a blue face on a beach"], ["a dog in a room"],
                ["a cat on a beach"]]
    assert content_terms(["a cartoon face in a room"]) == {"cartoon", "face", "room", "cartoon face"}
    assert summary_terms(captions, [0, 1]) == [("face", 2), ("blue", 1), ("blue face", 1), ("red", 1),
                                               ("red face", 1)]
    labels = Labelling.of_terms(captions)
    assert labels.enrichment(np.array([0, 1]))[labels.names.index("face")] == pytest.approx(0.5)
