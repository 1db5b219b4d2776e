"""Stage-1 ridge: equal to scikit-learn's Ridge at the chosen alpha, alpha chosen on validation only."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from brainview.decoding.ridge import StageOneRidge


def _problem(n, p, n_query=4, dim=8, noise=3.0, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((p, n_query * dim))
    X = rng.standard_normal((n, p))
    Y = X @ W + noise * rng.standard_normal((n, n_query * dim)) + 2.0
    Xv = rng.standard_normal((60, p))
    Yv = Xv @ W + 2.0
    return X, Y.reshape(n, n_query, dim), Xv, Yv.reshape(60, n_query, dim)


@pytest.mark.parametrize("n,p", [(120, 300), (300, 80)])  # kernel form and primal form
@pytest.mark.parametrize("alpha_per", ["token", "output", "global"])
def test_weights_equal_scikit_learn_at_chosen_alpha(n, p, alpha_per):
    X, Y, Xv, Yv = _problem(n, p)
    model = StageOneRidge(alphas=(0.1, 10, 100, 1e4), alpha_per=alpha_per, device="cpu").fit(X, Y, Xv, Yv)
    flat = Y.reshape(n, -1)
    for out in range(flat.shape[1]):
        ref = Ridge(alpha=float(model.alpha_[out])).fit(X, flat[:, out])
        rel = np.abs(ref.coef_ - model.weight_[out]).max() / np.abs(ref.coef_).max()
        assert rel < 1e-4
        assert abs(ref.intercept_ - model.bias_[out]) < 1e-4 * max(1.0, abs(ref.intercept_))
    assert model.predict(X[:3]).shape == (3, 4, 8)


def test_token_granularity_shares_alpha_within_a_token():
    X, Y, Xv, Yv = _problem(100, 200)
    model = StageOneRidge(alphas=(1, 100, 1e4), alpha_per="token", device="cpu").fit(X, Y, Xv, Yv)
    per_token = model.alpha_.reshape(4, 8)
    assert (per_token == per_token[:, :1]).all()


def test_alpha_follows_the_validation_set():
    """Alpha is picked by validation error: a noiseless validation set prefers the least shrinkage."""
    X, Y, Xv, Yv = _problem(300, 50, noise=0.01)
    model = StageOneRidge(alphas=(1e-3, 1e5), alpha_per="global", device="cpu").fit(X, Y, Xv, Yv)
    assert model.alpha_[0] == 1e-3
    assert model.validation_mse_.shape == (2, 32)
    # validation targets of pure noise: the strongest shrinkage wins
    rng = np.random.default_rng(1)
    model = StageOneRidge(alphas=(1e-3, 1e5), alpha_per="global", device="cpu").fit(
        X, Y, Xv, rng.standard_normal(Yv.shape) * 0.01 + Y.mean(0))
    assert model.alpha_[0] == 1e5


def test_rejects_unknown_granularity():
    with pytest.raises(ValueError, match="alpha_per"):
        StageOneRidge(alpha_per="voxel")


@pytest.mark.parametrize("n,p", [(120, 300), (300, 80)])
def test_weights_written_block_by_block_equal_the_gathered_ones(n, p):
    """Blocks smaller than the outputs (and than an alpha's columns) still give the same weights."""
    import torch

    from brainview.decoding.ridge import fit_ridge

    X, Y, Xv, Yv = _problem(n, p)
    groups = np.arange(32)
    args = (X, Y.reshape(n, -1), Xv, Yv.reshape(60, -1), (0.1, 10, 100, 1e4), groups, torch.device("cpu"))
    gathered = fit_ridge(*args)
    rows = np.full((32, p), np.nan, dtype=np.float32)
    starts = []

    def write(start, block):
        starts.append(start)
        rows[start:start + len(block)] = block

    streamed = fit_ridge(*args, write_weight=write, block=5)
    assert streamed.weight is None and starts == list(range(0, 32, 5))
    # equal up to float32 rounding (the BLAS sums a block of 5 columns in another order than one of 32)
    np.testing.assert_allclose(rows, gathered.weight, rtol=0, atol=1e-6 * np.abs(gathered.weight).max())
    np.testing.assert_allclose(streamed.bias, gathered.bias, rtol=0, atol=1e-6 * np.abs(gathered.bias).max())
    assert np.array_equal(streamed.alpha, gathered.alpha)


def test_overwrite_centres_the_callers_arrays_and_changes_nothing_else():
    X, Y, Xv, Yv = (a.astype(np.float32) for a in _problem(120, 300))
    kept = StageOneRidge(alphas=(1, 100), device="cpu").fit(X, Y, Xv, Yv)
    X0, Y0 = X.copy(), Y.copy()
    assert np.array_equal(X, X0) and np.array_equal(Y, Y0)  # the default copies
    reused = StageOneRidge(alphas=(1, 100), device="cpu").fit(X, Y, Xv, Yv, overwrite=True)
    assert not np.array_equal(X, X0)  # centred in place
    np.testing.assert_allclose(X, X0 - X0.mean(0), atol=1e-5)
    np.testing.assert_array_equal(reused.weight_, kept.weight_)
    np.testing.assert_array_equal(reused.bias_, kept.bias_)
