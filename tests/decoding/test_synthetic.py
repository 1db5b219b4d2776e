"""Synthetic patterns: the paper's ROI analysis, and lesion/boost of a real trial."""

import numpy as np
import pytest

from brainview.decoding.brain_model import BrainModel, LinearStage
from brainview.decoding.synthetic import boost, lesion, roi_tokens, synthetic_tokens


@pytest.fixture
def model():
    rng = np.random.default_rng(0)
    stage = LinearStage(rng.standard_normal((2 * 3, 10)).astype(np.float32), rng.standard_normal(6).astype(np.float32))
    return BrainModel({"stage1": stage}, n_query=2, query_dim=3)


def test_roi_tokens_follow_the_paper(model):
    voxels = np.array([1, 4, 7])
    x = np.zeros(10, np.float32)
    x[voxels] = 1
    raw = (model.stages["stage1"].weight @ x).reshape(2, 3)
    expected = raw / np.linalg.norm(raw, axis=1, keepdims=True) * 11 + model.stages["stage1"].bias.reshape(2, 3)
    got = roi_tokens(model, voxels, scale=11, stage="stage1")
    assert np.allclose(got, expected, atol=1e-5)
    # each token's deviation from the bias has norm = scale
    assert np.allclose(np.linalg.norm(got - model.stages["stage1"].bias.reshape(2, 3), axis=1), 11, atol=1e-4)


def test_empty_selection_is_refused(model):
    with pytest.raises(ValueError, match="empty"):
        roi_tokens(model, np.array([], int), stage="stage1")


def test_lesion_and_boost_change_only_the_selection():
    pattern = np.arange(1, 11, dtype=np.float32)
    assert lesion(pattern, [2, 3]).tolist() == [1, 2, 0, 0, 5, 6, 7, 8, 9, 10]
    assert boost(pattern, [0], 3.0).tolist()[:2] == [3, 2]
    assert pattern[2] == 3  # the trial's own pattern is untouched


def test_modes_from_a_trial(model):
    pattern = np.ones(10, np.float32)
    assert np.allclose(synthetic_tokens(model, "lesion", [0, 1], stage="stage1", pattern=pattern),
                       model.predict(lesion(pattern, [0, 1]), stage="stage1"))
    with pytest.raises(ValueError, match="real trial"):
        synthetic_tokens(model, "boost", [0], stage="stage1")
    with pytest.raises(ValueError, match="unknown mode"):
        synthetic_tokens(model, "paint", [0], stage="stage1", pattern=pattern)
