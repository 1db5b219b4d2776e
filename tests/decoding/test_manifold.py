"""The manifold projection (issue 26): a region's forward-model direction lands on the bank images that
carry it, and the temperature decides how many of them share the weight."""

import numpy as np
import pytest

from brainview.decoding.manifold import manifold_point, project_to_bank, region_direction, region_response


def world(seed=0, n=200, q=3, d=4, n_voxels=30):
    """Trials whose tokens carry a 'concept' c (first token, first dim) that voxels 0..4 respond to."""
    rng = np.random.default_rng(seed)
    concept = rng.normal(size=n)
    tokens = rng.normal(scale=0.3, size=(n, q, d)).astype(np.float32)
    tokens[:, 0, 0] += concept
    fmri = rng.normal(size=(n, n_voxels)).astype(np.float32)
    fmri[:, :5] += concept[:, None]
    return concept, tokens, fmri


def test_direction_is_the_covariance_with_the_region():
    concept, tokens, fmri = world()
    direction = region_direction(tokens, region_response(fmri, np.arange(5)))
    assert direction.shape == (3, 4)
    assert np.argmax(np.abs(direction)) == 0 and direction[0, 0] > 0
    other = region_direction(tokens, region_response(fmri, np.arange(10, 15)))
    assert abs(other[0, 0]) < direction[0, 0] / 3


def test_projection_is_a_weighted_mean_of_the_images_that_carry_the_direction():
    concept, tokens, fmri = world()
    point = manifold_point(tokens, fmri, tokens, np.arange(5), temperature=0.02)
    assert point.weights.sum() == pytest.approx(1.0)
    assert np.allclose(point.tokens, np.tensordot(point.weights, tokens, axes=1), atol=1e-5)
    assert concept[point.closest(10)].min() > np.quantile(concept, 0.8)
    assert point.tokens[0, 0] > np.quantile(tokens[:, 0, 0], 0.9)


def test_temperature_spreads_the_weight():
    concept, tokens, fmri = world()
    direction = region_direction(tokens, region_response(fmri, np.arange(5)))
    sharp, soft = project_to_bank(direction, tokens, 0.005), project_to_bank(direction, tokens, 1.0)
    assert sharp.effective_images < 3 < 100 < soft.effective_images
    with pytest.raises(ValueError):
        project_to_bank(direction, tokens, 0.0)
    with pytest.raises(ValueError):
        region_response(fmri, [])


def test_a_region_without_variance_has_no_direction():
    from brainview.errors import UserError

    concept, tokens, fmri = world()
    with pytest.raises(UserError, match="no direction"):
        region_direction(tokens[:1], region_response(fmri[:1], np.arange(5)))
    with pytest.raises(UserError, match="no direction"):
        region_direction(tokens, np.ones(len(tokens)))
