"""Retrieval on constructed embeddings with known answers, in every named direction."""

import numpy as np
import pytest

from brainview.decoding.retrieval import (DIRECTIONS, evaluate_retrieval, image_scores, rank_of, text_scores,
                                          top_k)


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_image_scores_are_cosines_of_flattened_tokens():
    a = np.array([[[1.0, 0.0], [0.0, 0.0]]], np.float32)
    b = np.array([[[2.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]], np.float32)
    assert np.allclose(image_scores(a, b), [[1.0, 0.0, 1 / np.sqrt(2)]])


def test_text_scores_take_the_best_query_token():
    tokens = _unit(np.array([[[1.0, 0.0], [0.0, 1.0]]], np.float32))
    texts = _unit(np.array([[0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]], np.float32))
    assert np.allclose(text_scores(tokens, texts), [[1.0, 1 / np.sqrt(2), 0.0]])


def test_top_k_and_rank():
    scores = np.array([0.1, 0.9, 0.5, 0.7])
    ranked = top_k(scores, 3)
    assert ranked.indices.tolist() == [1, 3, 2] and np.allclose(ranked.scores, [0.9, 0.7, 0.5])
    assert rank_of(scores, 2) == 3 and rank_of(scores, 1) == 1


def _asymmetric_world(n=40, q=3, d=5, t=4, seed=0):
    """Brain i matches image i and text i, with two planted confusions that the directions see differently.

    Brain 1 is a near copy of image 0: image_given_brain fails for brain 1 only; brain_given_image
    fails for image 0 (brain 1 is closer to it than brain 0) and for image 1 (its brain points
    elsewhere). Brain 2 points exactly at text 3: text_given_brain fails for brain 2 only;
    brain_given_text fails for text 2 and text 3.
    """
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n, q, d)).astype(np.float32)
    brains = images + 0.01 * rng.standard_normal(images.shape).astype(np.float32)
    brains[1] = images[0] + 0.001  # brain 1 confuses image 0
    texts = _unit(rng.standard_normal((n, t)).astype(np.float32))
    projected = np.repeat(texts[:, None, :], q, axis=1) + 0.01 * rng.standard_normal((n, q, t))
    projected[2] = np.repeat(texts[3][None], q, axis=0)  # brain 2 points at text of trial 3
    return brains, images, _unit(projected.astype(np.float32)), texts, np.stack([np.arange(n), np.zeros(n, int)], 1)


def test_each_direction_gives_the_planted_top1():
    brains, images, projected, texts, index = _asymmetric_world()
    result = evaluate_retrieval(brains, images, projected, texts, index, image_repeats=2, text_repeats=2, pool=40)
    assert list(result) == list(DIRECTIONS)
    assert result["image_given_brain"]["top1"] == pytest.approx(39 / 40)
    assert result["brain_given_image"]["top1"] == pytest.approx(38 / 40)
    assert result["text_given_brain"]["top1"] == pytest.approx(39 / 40)
    assert result["brain_given_text"]["top1"] == pytest.approx(38 / 40)
    for r in result.values():
        assert r["pool"] == 40 and r["ci95"][0] <= r["top1"] <= r["ci95"][1]


def test_repeats_draw_distinct_trials_and_are_seeded():
    rng = np.random.default_rng(3)
    images = rng.standard_normal((500, 2, 4)).astype(np.float32)
    brains = images + 1.5 * rng.standard_normal(images.shape).astype(np.float32)
    a = evaluate_retrieval(brains, images, image_repeats=5, seed=7)
    b = evaluate_retrieval(brains, images, image_repeats=5, seed=7)
    c = evaluate_retrieval(brains, images, image_repeats=5, seed=8)
    assert a == b and a != c
    assert a["image_given_brain"]["pool"] == 300 and a["image_given_brain"]["repeats"] == 5
    assert "text_given_brain" not in a
