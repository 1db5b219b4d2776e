"""The demo world's question-answer pairs: every type, several phrasings, answers from the attributes."""

from __future__ import annotations

import numpy as np

from brainview.decoding.questions import is_correct
from training.demo_world.questions import QUESTION_TYPES, question_set, scene_question, types_for
from training.demo_world.scenes import generate_scenes


def test_every_type_is_asked_of_every_scene_it_applies_to():
    scenes = generate_scenes(120, seed=2)
    qa = question_set(scenes, seed=0)
    assert len(qa) == 120
    for attrs, items in zip(scenes.attributes, qa):
        assert [q["type"] for q in items] == types_for(attrs)
        assert ("text" in types_for(attrs)) == (attrs["category"] == "sign")
    assert {q["type"] for items in qa for q in items} == set(QUESTION_TYPES)
    assert question_set(scenes, seed=0) == qa  # seeded
    assert question_set(scenes, seed=1) != qa


def test_answers_come_from_the_scene():
    scenes = generate_scenes(60, seed=3)
    for attrs, items in zip(scenes.attributes, question_set(scenes, seed=0)):
        by_type = {q["type"]: q for q in items}
        assert is_correct(attrs["colour"], by_type["colour"]["answers"])
        assert is_correct(attrs["place"], by_type["place"]["answers"])
        assert is_correct(attrs["kind"], by_type["kind"]["answers"])
        assert is_correct(attrs["category"], by_type["category"]["answers"])
        assert is_correct(str(attrs["count"]), by_type["count"]["answers"])  # "two" == "2"
        assert is_correct(attrs["position"], by_type["position"]["answers"])
        assert is_correct(attrs["size"], by_type["size"]["answers"])
        if attrs["category"] == "sign":
            assert is_correct(attrs["text"], by_type["text"]["answers"])
        others = {"colour": "grey", "place": "kitchen", "kind": "car"}
        assert not any(is_correct(wrong, by_type[t]["answers"]) for t, wrong in others.items())


def test_several_phrasings_per_type():
    scenes = generate_scenes(200, seed=4)
    rng = np.random.default_rng(0)
    for kind in QUESTION_TYPES:
        asked = {scene_question(kind, a, rng)["question"] for a in scenes.attributes if kind in types_for(a)}
        assert len(asked) >= 3, kind
