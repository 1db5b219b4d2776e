"""Stage-2 contrastive trainer on a small synthetic problem with a known latent structure.

Every trial has a latent vector z: its image tokens and its captions' text embeddings are noisy
linear functions of z, and its voxels a noisy linear function of the image tokens. Stage 1 is
the ridge fit; stage 2 should then align brain patterns with the text embeddings.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from brainview.decoding.brain_model import BrainModel, LinearStage
from brainview.decoding.retrieval import text_scores
from brainview.decoding.ridge import StageOneRidge
from brainview.decoding.stage2 import Stage2Config, Stage2Module, Stage2Result, fit_stage2

N_VOXELS, N_QUERY, QUERY_DIM, TEXT_DIM, CAPTIONS, LATENT = 200, 4, 16, 8, 3, 12


def synthetic_split(n: int, seed: int):
    structure = np.random.default_rng(0)
    to_tokens = structure.normal(size=(LATENT, N_QUERY * QUERY_DIM)) / np.sqrt(LATENT)
    to_text = structure.normal(size=(LATENT, TEXT_DIM))
    to_voxels = structure.normal(size=(N_QUERY * QUERY_DIM, N_VOXELS)) / np.sqrt(N_QUERY * QUERY_DIM)
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, LATENT))
    tokens = z @ to_tokens + 0.3 * rng.normal(size=(n, N_QUERY * QUERY_DIM))
    texts = z[:, None, :] @ to_text + 0.5 * rng.normal(size=(n, CAPTIONS, TEXT_DIM))
    texts /= np.linalg.norm(texts, axis=-1, keepdims=True)
    X = tokens @ to_voxels + 2.0 * rng.normal(size=(n, N_VOXELS))
    X = (X - X.mean(0)) / X.std(0)
    return (X.astype(np.float32), tokens.reshape(n, N_QUERY, QUERY_DIM).astype(np.float32),
            texts.astype(np.float32))


@pytest.fixture(scope="module")
def problem():
    torch.set_num_threads(1)
    train, val, held_out = synthetic_split(400, 1), synthetic_split(100, 2), synthetic_split(200, 3)
    ridge = StageOneRidge(alphas=(1, 10, 100, 1e3, 1e4), device="cpu").fit(train[0], train[1], val[0], val[1])
    return {"train": train, "val": val, "held_out": held_out, "ridge": ridge}


def config(**changes) -> Stage2Config:
    return Stage2Config(**{"accelerator": "cpu", "batch_size": 64, "max_epochs": 25, "patience": 5, **changes})


def fit(problem, cfg: Stage2Config, texts_rank: int = 3) -> Stage2Result:
    (X, tokens, texts), (Xv, tokens_v, texts_v) = problem["train"], problem["val"]
    if texts_rank == 2:
        texts, texts_v = texts[:, 0], texts_v[:, 0]
    ridge = problem["ridge"]
    return fit_stage2(ridge.weight_, ridge.bias_, X, tokens, texts, Xv, tokens_v, texts_v, cfg)


def held_out_text_top1(problem, result: Stage2Result) -> float:
    """Brain->text top-1 on trials used neither for fitting nor for selection, as brainview scores it."""
    X, _, texts = problem["held_out"]
    model = BrainModel({"stage2": LinearStage(result.weight, result.bias)}, N_QUERY, QUERY_DIM,
                       result.projection_weight, result.projection_bias)
    scores = text_scores(model.project_text(model.predict(X, "stage2")), texts[:, 0])
    return float((scores.argmax(axis=1) == np.arange(len(scores))).mean())


@pytest.fixture(scope="module")
def default_fit(problem):
    return fit(problem, config())


@pytest.fixture(scope="module")
def projection_only_fit(problem):
    """No brain-text term: the projection learns from image tokens only, the brain weights from MSE only."""
    return fit(problem, config(lambda_brain_text=0.0))


def test_weights_come_back_in_the_bundle_layout(default_fit):
    n_out = N_QUERY * QUERY_DIM
    assert default_fit.weight.shape == (n_out, N_VOXELS) and default_fit.bias.shape == (n_out,)
    assert default_fit.projection_weight.shape == (TEXT_DIM, QUERY_DIM)
    assert default_fit.projection_bias.shape == (TEXT_DIM,)
    assert all(a.dtype == np.float32 for a in default_fit.tensors().values())
    assert set(default_fit.tensors()) == {"stage2.weight", "stage2.bias", "stage2.projection.weight",
                                          "stage2.projection.bias"}


def test_validation_loss_goes_down_and_selects_the_best_epoch(default_fit):
    losses = [h["val_loss"] for h in default_fit.history]
    assert default_fit.history[0]["epoch"] == -1  # the stage-1 start is validated too
    assert min(losses) < 0.8 * losses[0]
    train_losses = [h["train_loss"] for h in default_fit.history[1:]]
    assert train_losses[-1] < train_losses[0]
    best = min(default_fit.history, key=lambda h: h["val_loss"])
    assert default_fit.best_epoch == best["epoch"]


def test_contrastive_tuning_improves_text_retrieval_over_the_stage1_weights(problem, default_fit,
                                                                           projection_only_fit):
    tuned = held_out_text_top1(problem, default_fit)
    stage1_like = held_out_text_top1(problem, projection_only_fit)
    assert tuned > stage1_like + 0.05, (tuned, stage1_like)
    assert tuned > 10 / 200  # far above chance


def test_mse_only_keeps_the_ridge_solution(problem):
    result = fit(problem, config(lambda_brain_text=0.0, lambda_image_text=0.0, max_epochs=5, patience=2))
    ridge = problem["ridge"]
    change = np.linalg.norm(result.weight - ridge.weight_) / np.linalg.norm(ridge.weight_)
    assert change < 0.05


def test_lambdas_weight_the_three_terms():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(N_QUERY * QUERY_DIM, N_VOXELS)).astype(np.float32) * 0.01
    module = Stage2Module(weight, np.zeros(len(weight), np.float32), N_QUERY, TEXT_DIM,
                          config(lambda_mse=2.0, lambda_brain_text=0.5, lambda_image_text=0.25))
    x = torch.randn(8, N_VOXELS)
    tokens = torch.randn(8, N_QUERY, QUERY_DIM)
    texts = torch.nn.functional.normalize(torch.randn(8, TEXT_DIM), dim=-1)
    parts = module.losses(x, tokens, texts)
    expected = 2.0 * parts["mse"] + 0.5 * parts["brain_text"] + 0.25 * parts["image_text"]
    assert torch.allclose(parts["loss"], expected)


def test_one_caption_per_trial_and_determinism(problem):
    cfg = config(max_epochs=3, patience=3)
    first, second = fit(problem, cfg, texts_rank=2), fit(problem, cfg, texts_rank=2)
    np.testing.assert_array_equal(first.weight, second.weight)
    np.testing.assert_array_equal(first.projection_weight, second.projection_weight)


def test_fixed_temperature_stays_fixed(problem):
    result = fit(problem, config(max_epochs=2, learn_temperature=False, temperature=0.1))
    assert result.temperature == pytest.approx(0.1)


def test_the_test_split_is_never_an_input():
    parameters = inspect.signature(fit_stage2).parameters
    assert not any("test" in name for name in parameters)
    assert {"X_val", "tokens_val", "texts_val"} <= set(parameters)


def test_bad_shapes_are_refused(problem):
    (X, tokens, texts), (Xv, tokens_v, texts_v) = problem["train"], problem["val"]
    ridge = problem["ridge"]
    with pytest.raises(ValueError, match="voxels"):
        fit_stage2(ridge.weight_, ridge.bias_, X[:, :-1], tokens, texts, Xv, tokens_v, texts_v, config())
    with pytest.raises(ValueError, match="monitor"):
        Stage2Config(monitor="test_loss")
