"""The committed demo bundle's language queries find the planted category areas (issue 11, "Done when").

Ground truth: training/demo_world/README.md, "Ground truth: what each ROI prefers" (faces → floc-faces,
people → floc-bodies, signs → floc-words, place scenes → floc-places; animals have no area). The
queries are CLIP's template over the category names, as a user would type them; the map is the
trial-independent one (Haufe covariance of the phrase's score over the 300 test trials).
"""

import numpy as np
import pytest

from brainview.bundle import open_bundle
from brainview.decoding.language import LanguageProbe, parse_labels
from brainview.paths import demo_bundle_path

CATEGORIES = ("face", "person", "animal", "sign", "place")
AREAS = {"face": "floc-faces", "person": "floc-bodies", "sign": "floc-words", "place": "floc-places"}


@pytest.fixture(scope="module")
def probe():
    return LanguageProbe.load(open_bundle(demo_bundle_path()), "cpu")


@pytest.mark.parametrize("category", AREAS)
def test_a_category_phrase_maps_to_its_area_and_its_lesion_beats_random_ones(probe, category):
    concept = probe.concept_map(f"a photo of a {category}")
    assert not concept.unknown
    means = concept.roi_means({name: spec["voxels"] for name, spec in probe.bundle.rois.items()})
    assert next(iter(means)) == AREAS[category], means
    check = probe.lesion(concept)  # the map's top 5% against 20 random sets of as many voxels
    random_drops = check.score_before - check.random_after
    assert check.score_drop > random_drops.max(), (check.score_drop, random_drops)
    assert check.score_drop > check.random_score_drop + 2 * check.random_score_drop_sd


def test_zero_shot_categories_from_the_brain_are_well_above_chance(probe):
    result = probe.classify(parse_labels(CATEGORIES), "scene.category")
    accuracy = result.accuracy
    assert accuracy.n == probe.n_trials and accuracy.chance == pytest.approx(1 / len(CATEGORIES))
    assert accuracy.ci95[0] > 2 * accuracy.chance, accuracy
    assert np.trace(accuracy.confusion) == round(accuracy.top1 * accuracy.n)
