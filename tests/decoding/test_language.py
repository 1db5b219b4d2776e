"""Phrase search, zero-shot labels and concept maps on bundles whose answers are planted (tests.factories)."""

from __future__ import annotations

import numpy as np
import pytest

from brainview.decoding.language import (Label, LanguageProbe, parse_labels, truth_fields, unavailable_reason,
                                         zero_shot_accuracy)
from brainview.errors import UserError
from tests.factories import CONCEPTS, concept_text, make_bundle, make_concept_bundle

PHRASES = {f"a photo of a {c}": concept_text(c) for c in CONCEPTS}


def planted_embed(texts):
    """The text encoder of the planted world: known phrases → their directions (unknown ones fail loudly)."""
    extra = {"plus": concept_text("A") + 0.5 * np.eye(5, dtype=np.float32)[4],
             "minus": concept_text("A") - 0.5 * np.eye(5, dtype=np.float32)[4],
             "A or B": concept_text("A") + 1.2 * concept_text("B")}  # mostly B: its plain map is B's area
    return np.stack([({**PHRASES, **extra})[t] for t in texts])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_concept_bundle(tmp_path_factory.mktemp("concepts") / "bundle")


@pytest.fixture(scope="module")
def probe(bundle):
    return LanguageProbe(bundle, planted_embed)


def truth_of(bundle):
    return np.array([CONCEPTS.index(t["scene"]["category"]) for t in bundle.trials])


def test_search_ranks_the_planted_trials_first(bundle, probe):
    truth = truth_of(bundle)
    for i, concept in enumerate(CONCEPTS):
        result = probe.search(f"a photo of a {concept}")
        assert set(result.order[:20].tolist()) == set(np.flatnonzero(truth == i).tolist())
        assert set(np.argsort(-result.image)[:20].tolist()) == set(np.flatnonzero(truth == i).tolist())
        assert result.overlap(20) == 1.0 and result.agreement > 0.5


def test_search_score_is_text_given_brain(bundle, probe):
    from brainview.decoding.brain_model import BrainModel
    from brainview.decoding.retrieval import text_scores

    model = BrainModel.from_bundle(bundle)
    projected = model.project_text(model.predict(bundle.fmri, "stage2"))
    expected = text_scores(projected, concept_text("B")[None])[:, 0]
    np.testing.assert_allclose(probe.search("a photo of a B").brain, expected, rtol=1e-6)


def test_empty_phrase_is_a_user_error(probe):
    with pytest.raises(UserError, match="empty"):
        probe.search("   ")


def test_zero_shot_recovers_the_planted_labels(bundle, probe):
    labels = parse_labels(list(CONCEPTS))
    assert labels[0] == Label("A", ("a photo of a A",))
    result = probe.classify(labels, "scene.category")
    assert result.accuracy.top1 == 1.0 and result.image_accuracy.top1 == 1.0
    assert result.accuracy.n == 60 and result.accuracy.chance == pytest.approx(1 / 3)
    np.testing.assert_array_equal(result.accuracy.confusion, np.diag([20, 20, 20]))
    assert result.top(0, 2)[0] == bundle.trials[0]["scene"]["category"]


def test_prompt_ensemble_averages_and_renormalizes(probe):
    label = parse_labels(["A=plus; minus", "B"])[0]
    assert label.prompts == ("plus", "minus")
    np.testing.assert_allclose(probe.label_embeddings([label])[0], concept_text("A"), atol=1e-6)


def test_accuracy_on_a_planted_confusion():
    truth = np.array([0, 0, 1, 1, 2, 2, -1])
    # predicted order per trial: top-1 is argmax; trial 1 → 1 then 0, trial 4 → 0, then 2 second
    scores = np.array([[3, 2, 1], [2, 3, 1], [1, 3, 2], [1, 3, 2], [3, 1, 2], [1, 2, 3], [3, 2, 1]], dtype=float)
    acc = zero_shot_accuracy(scores, truth, k=2)
    assert acc.n == 6 and acc.top1 == pytest.approx(4 / 6) and acc.top5 == pytest.approx(6 / 6)
    np.testing.assert_array_equal(acc.confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert acc.chance == pytest.approx(1 / 3) and acc.chance_top5 == pytest.approx(2 / 3)
    lo, hi = acc.ci95
    assert 0.2 < lo < 4 / 6 < hi < 0.95  # Wilson interval of 4/6: [0.300, 0.903]
    assert (lo, hi) == pytest.approx((0.3000, 0.9032), abs=1e-3)


def test_labels_and_truth_are_checked(probe):
    with pytest.raises(UserError, match="no {}"):
        parse_labels(["a", "b"], "a photo")
    with pytest.raises(UserError, match="twice"):
        parse_labels(["a", "a"])
    with pytest.raises(UserError, match="at least two"):
        parse_labels(["a"])
    with pytest.raises(UserError, match="no trial has a field 'scene.kind'"):
        probe.classify(parse_labels(list(CONCEPTS)), "scene.kind")
    with pytest.raises(UserError, match="none of the trials"):
        probe.classify(parse_labels(["A=plus", "B=minus"]), "scene.parity")


def test_truth_fields_lists_the_varying_fields(bundle):
    assert truth_fields(bundle.trials) == ["scene.category", "scene.parity"]


def test_closed_form_gradient_equals_autograd(bundle, probe):
    torch = pytest.importorskip("torch")
    model = probe.model
    lin = model.stage("stage2")
    text = concept_text("C") + 0.3 * concept_text("A")
    text /= np.linalg.norm(text)
    for trial in (0, 25, 45):
        x = torch.tensor(np.asarray(bundle.fmri[trial], dtype=np.float64), requires_grad=True)
        w, b = torch.tensor(lin.weight, dtype=torch.float64), torch.tensor(lin.bias, dtype=torch.float64)
        p = torch.tensor(model.projection_weight, dtype=torch.float64)
        c = torch.tensor(model.projection_bias, dtype=torch.float64)
        u = (w @ x + b).reshape(model.n_query, model.query_dim) @ p.T + c
        score = (torch.nn.functional.normalize(u, dim=-1) @ torch.tensor(text, dtype=torch.float64)).max()
        score.backward()
        grad, value, _ = probe.gradient(bundle.fmri[trial], text)
        assert value == pytest.approx(score.item(), abs=1e-9)
        assert np.abs(x.grad.numpy()).max() > 1e-3  # a gradient worth comparing
        np.testing.assert_allclose(grad, x.grad.numpy(), atol=1e-5, rtol=0)


def test_gradient_map_is_gradient_times_input(bundle, probe):
    concept = probe.concept_map("a photo of a B", trial=25)
    grad, _, _ = probe.gradient(bundle.fmri[25], concept_text("B"))
    np.testing.assert_allclose(concept.values, grad * bundle.fmri[25], rtol=1e-5, atol=1e-7)
    assert concept.kind == "gradient×input" and set(concept.top_voxels(5 / 40).tolist()) == set(range(5, 10))


def test_trial_independent_map_finds_the_area(bundle, probe):
    rois = {name: spec["voxels"] for name, spec in bundle.rois.items()}
    for concept in CONCEPTS:
        result = probe.concept_map(f"a photo of a {concept}")
        assert result.kind == "covariance" and result.trial is None
        assert next(iter(result.roi_means(rois))) == f"{concept}-area"
        assert set(result.top_voxels(5 / 40).tolist()) == set(bundle.rois[f"{concept}-area"]["voxels"].tolist())
        # Haufe's pattern: cov(voxel, score) / sd(score), computed here without the probe
        score = probe.search(f"a photo of a {concept}").brain
        x = np.asarray(bundle.fmri, dtype=np.float64)
        expected = ((x - x.mean(0)) * (score - score.mean())[:, None]).sum(0) / (len(score) - 1) / score.std(ddof=1)
        np.testing.assert_allclose(result.values, expected, rtol=1e-4, atol=1e-6)


def test_lesion_of_the_area_drops_the_score_and_random_does_not(probe):
    concept = probe.concept_map("a photo of a A")
    captions = []

    def captioner(tokens):
        captions.append(tokens.shape)
        return [f"caption {i}" for i in range(len(tokens))]

    check = probe.lesion(concept, 5 / 40, captioner=captioner)
    assert check.n_voxels == 5 and check.trials.size == 6  # the best-matching tenth of 60 trials
    assert check.score_before > 0.9 and check.score_drop > 0.5
    assert abs(check.random_score_drop) < 0.1 and check.random_after.size == 20
    assert captions == [(3, 3, 6)] and check.caption_after == "caption 1"


def test_bundles_without_stage2_or_retrieval_say_why(tmp_path):
    stage1 = make_bundle(tmp_path / "s1", stages=("stage1",))
    assert "stage 2" in unavailable_reason(stage1)
    with pytest.raises(UserError, match="stage 2"):
        LanguageProbe(stage1, planted_embed)
    no_vlm = make_bundle(tmp_path / "novlm")
    assert "names none" in unavailable_reason(no_vlm)


def test_versus_maps_what_tells_the_phrase_from_its_alternatives(bundle, probe):
    rois = {name: spec["voxels"] for name, spec in bundle.rois.items()}
    plain = probe.concept_map("A or B")
    assert next(iter(plain.roi_means(rois))) == "B-area"
    against = probe.concept_map("A or B", versus=["a photo of a B"])
    assert against.versus == ("a photo of a B",) and next(iter(against.roi_means(rois))) == "A-area"
    check = probe.lesion(against, 5 / 40)
    assert check.measure == "log-odds" and check.score_drop > 1.0 > abs(check.random_score_drop)
    with pytest.raises(UserError, match="its own alternatives"):
        probe.concept_map("A or B", versus=["A or B"])


def test_a_lesion_against_alternatives_is_measured_in_log_odds(probe):
    """log p / (1 − p) of the zero-shot probability, finite where p rounds to 1 (where a probability
    could show no drop at all)."""
    texts = probe.label_embeddings(probe._queries("A or B", ["a photo of a B", "a photo of a C"]))
    probability = probe._measure(probe.brain_projected, texts)
    log_odds = probe._lesion_measure(probe.brain_projected, texts)
    inside = (probability > 1e-9) & (probability < 1 - 1e-9)
    assert inside.any()
    np.testing.assert_allclose(log_odds[inside], np.log(probability[inside] / (1 - probability[inside])), rtol=1e-6)
    assert np.isfinite(log_odds).all()
    saturated = probability > 1 - 1e-12  # the best matches: their probabilities no longer tell them apart
    assert saturated.sum() > 1 and np.unique(log_odds[saturated]).size == saturated.sum()
    assert log_odds[saturated].min() > log_odds[inside].max()


def test_versus_gradient_equals_autograd(bundle, probe, monkeypatch):
    torch = pytest.importorskip("torch")
    from brainview.decoding.language import probe as probe_module

    CLIP_TEMPERATURE = 0.5  # at CLIP's 0.01 the planted world's probabilities saturate and the gradient vanishes
    monkeypatch.setattr(probe_module, "CLIP_TEMPERATURE", CLIP_TEMPERATURE)

    model, lin = probe.model, probe.model.stage("stage2")
    texts = torch.tensor(np.stack([planted_embed(["A or B"])[0] / np.linalg.norm(planted_embed(["A or B"])[0]),
                                   concept_text("B"), concept_text("C")]), dtype=torch.float64)
    for trial in (3, 30):
        x = torch.tensor(np.asarray(bundle.fmri[trial], dtype=np.float64), requires_grad=True)
        w, b = torch.tensor(lin.weight, dtype=torch.float64), torch.tensor(lin.bias, dtype=torch.float64)
        u = (w @ x + b).reshape(model.n_query, model.query_dim) @ torch.tensor(model.projection_weight,
                                                                              dtype=torch.float64).T
        scores = (torch.nn.functional.normalize(u, dim=-1) @ texts.T).max(dim=0).values
        torch.softmax(scores / CLIP_TEMPERATURE, dim=0)[0].backward()
        concept = probe.concept_map("A or B", trial=trial, versus=["a photo of a B", "a photo of a C"])
        expected = x.grad.numpy() * bundle.fmri[trial]
        assert np.abs(expected).max() > 1e-4
        np.testing.assert_allclose(concept.values, expected, atol=1e-5, rtol=0)
