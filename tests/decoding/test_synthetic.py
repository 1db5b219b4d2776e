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


def test_lesion_from_weight_columns_equals_the_full_prediction(model):
    pattern = np.random.default_rng(1).standard_normal(10).astype(np.float32)
    base = model.predict(pattern, "stage1")
    for mode in ("lesion", "boost"):
        fast = synthetic_tokens(model, mode, np.array([2, 5, 5]), stage="stage1", pattern=pattern, base=base)
        slow = synthetic_tokens(model, mode, np.array([2, 5, 5]), stage="stage1", pattern=pattern)
        assert np.allclose(fast, slow, atol=1e-5)


def test_the_decoder_keeps_column_sums_exact_through_edits(tmp_path):
    """Column sums come from the prediction pass (atlas ROIs), a cache, or the previous selection plus
    the voxels added and minus those removed; every path gives the sum of the selected columns."""
    from brainview.decoding.decoder import Decoder
    from tests.factories import make_bundle

    bundle = make_bundle(tmp_path / "b", n_voxels=60)
    decoder = Decoder(bundle)
    weight = np.asarray(decoder.model.stage("stage2").weight, dtype=np.float64)
    for _ in decoder.iter_predict_all("stage2"):
        pass
    v1 = np.unique(bundle.roi_voxels("V1"))
    assert decoder._column_sums["stage2", v1.tobytes()] is decoder.column_sum("stage2", v1)  # from the pass
    selection = set(v1.tolist())
    rng = np.random.default_rng(0)
    for _ in range(30):  # a brush stroke: paint and erase a few voxels at a time
        dab = set(rng.choice(60, size=3).tolist())
        selection = selection - dab if rng.random() < 0.3 else selection | dab
        voxels = np.array(sorted(selection or {0}))
        got = decoder.column_sum("stage2", voxels)
        assert np.allclose(got, weight[:, voxels].sum(axis=1), atol=1e-4)
    tokens = decoder.synthetic("roi", voxels, "stage2", scale=11.0)
    assert np.allclose(tokens, roi_tokens(decoder.model, voxels, scale=11.0, stage="stage2"), atol=1e-4)
