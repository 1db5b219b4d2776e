"""Prompt ensembles wherever a phrase is typed, and the vocabulary check of every language answer."""

from __future__ import annotations

import numpy as np
import pytest

from brainview.decoding.language import Label, LanguageProbe, Vocabulary, parse_query
from brainview.decoding.retrieval import text_scores
from brainview.decoding.vectors import unit_norm
from brainview.errors import UserError
from tests.decoding.test_language import planted_embed
from tests.factories import make_captioned_bundle, make_concept_bundle


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    return LanguageProbe(make_concept_bundle(tmp_path_factory.mktemp("concepts") / "bundle"), planted_embed)


def ensemble(*texts):
    """What an ensemble must embed as: each prompt's embedding normalized, averaged, renormalized."""
    return unit_norm(unit_norm(planted_embed(list(texts))).mean(axis=0))


def test_query_syntax():
    assert parse_query("  a red   dog ") == Label("a red dog", ("a red dog",))
    assert parse_query("a dog; a cat") == Label("a dog; a cat", ("a dog", "a cat"))
    assert parse_query("pet = a dog ;a cat;") == Label("pet", ("a dog", "a cat"))
    for label in (parse_query("pet=a dog;a cat"), parse_query("a dog")):
        assert parse_query(label.spec) == label
    with pytest.raises(UserError, match="no name"):
        parse_query("=a dog")
    with pytest.raises(UserError, match="no prompts"):
        parse_query("pet=")
    with pytest.raises(UserError, match="empty"):
        parse_query("  ")


def test_search_of_an_ensemble_scores_the_renormalized_mean(probe):
    result = probe.search("A=plus;A or B")
    assert result.phrase == "A" and result.query.prompts == ("plus", "A or B")
    expected = text_scores(probe.brain_projected, ensemble("plus", "A or B")[None])[:, 0]
    np.testing.assert_allclose(result.brain, expected, rtol=1e-6)


def test_concept_maps_of_an_ensemble_are_maps_of_the_renormalized_mean(probe):
    # plus and minus differ from A only along an unused direction: their mean renormalized is A itself
    np.testing.assert_allclose(probe.concept_map("A=plus;minus").values, probe.concept_map("a photo of a A").values,
                               rtol=1e-5, atol=1e-7)
    trial = probe.concept_map("mix=plus;A or B", trial=25)
    grad, _, _ = probe.gradient(probe.patterns[25], ensemble("plus", "A or B"))
    np.testing.assert_allclose(trial.values, grad * probe.patterns[25], rtol=1e-5, atol=1e-7)
    against = probe.concept_map("mix=plus;A or B", versus=["B=a photo of a B;minus", "a photo of a C"])
    assert against.versus == ("B", "a photo of a C") and [q.name for q in against.queries] == ["mix", "B", "a photo of a C"]
    check = probe.lesion(against, 5 / 40)  # re-embeds the ensembles it was mapped with
    assert check.measure == "log-odds" and np.isfinite(check.score_drop)
    with pytest.raises(UserError, match="its own alternatives"):
        probe.concept_map("A=plus;minus", versus=["other=plus;minus"])


def test_the_vocabulary_rule():
    pieces = {"dog": ["dog"], "chased": ["ch", "ased"], "ball": ["b", "all"], "the": ["th", "e"], "Dog": ["D", "og"]}
    vocabulary = Vocabulary.from_captions(lambda w: pieces.get(w, list(w)), [["a red ball"], ["two balls"]])
    # "a": one piece; "dog": one token though no caption has it; "ball": split, but a caption word
    assert vocabulary.unknown(["a red dog chased the ball", "the Dog"]) == {
        "chased": ("ch", "ased"), "the": ("th", "e"), "Dog": ("D", "og")}
    assert vocabulary.n_captions == 2 and vocabulary.warning({}) is None
    assert "'chased' (ch·ased): not one token of the text encoder" in vocabulary.warning({"chased": ("ch", "ased")})


def test_vocabulary_check_on_the_real_tokenizer(tmp_path):
    # the factory's tokenizer and captions know "caption 0 of trial 3", and neither "photo" nor "place"
    bundle = make_captioned_bundle(tmp_path, n_trials=12)
    probe = LanguageProbe.load(bundle, "cpu")
    assert probe.search("caption 1 of trial 3").unknown == {}
    result = probe.search("a photo of a place")
    assert result.unknown == {"photo": tuple("photo"), "place": tuple("place")}
    zero_shot = probe.classify([Label("known", ("caption of trial",)), Label("new", ("a photo",))])
    assert zero_shot.unknown == {"new": {"photo": tuple("photo")}}
    assert set(probe.concept_map("trial", versus=["a place"]).unknown) == {"place"}
    assert LanguageProbe(bundle, probe.embed).search("a photo").unknown == {}  # no tokenizer: no check


def test_labels_from_a_field_and_its_finer_field():
    from brainview.decoding.language import field_labels, refining_fields

    trials = [{"id": str(i), "s": {"category": c, "kind": k, "word": w}} for i, (c, k, w) in enumerate(
        [("animal", "dog", None), ("animal", "cat", None), ("sign", "sign", "stop"), ("animal", "dog", None),
         ("sign", "sign", "exit")])]
    assert refining_fields(trials, "s.category") == ["s.kind"]  # s.word is missing where category is animal
    assert refining_fields(trials, "s.kind") == []
    assert field_labels(trials, "s.category") == ["animal", "sign"]
    assert field_labels(trials, "s.category", "s.kind", "an image of a {}") == [
        "animal=an image of a cat;an image of a dog", "sign=an image of a sign"]
