"""Question-answer pairs about the demo scenes, generated from their attributes.

As NV2L built instruction data from COCO captions, the demo world asks about what it already
knows of every scene: the object's colour and kind, the category, the place, how many objects,
where they stand, what a sign says and how large the object is. Each question type has several
phrasings, some naming the object and some not; accepted answers include the caption grammar's
synonyms ("man" for a person, "living room" for a room).

``scene_questions(attrs, rng)`` draws one phrasing per type (the training data draws afresh
every epoch); ``question_set(scenes, seed)`` is the held-out set of a split, as the bundle's
``test/questions.json`` stores it.
"""

from __future__ import annotations

import numpy as np

from training.demo_world.scenes import SceneSet

QUESTION_TYPES = ("colour", "kind", "category", "place", "count", "position", "text", "size")

_NOUNS = {"face": ("face", "faces"), "person": ("person", "people"), "dog": ("dog", "dogs"), "cat": ("cat", "cats"),
          "bird": ("bird", "birds"), "sign": ("sign", "signs"), "house": ("house", "houses"), "barn": ("barn", "barns"),
          "umbrella": ("umbrella", "umbrellas"), "couch": ("couch", "couches")}
_KIND_ANSWERS = {"person": ["person", "man", "people"], "face": ["face", "smiley face", "cartoon face"]}
_PLACE_ANSWERS = {"room": ["room", "living room"], "street": ["street", "city street"],
                  "field": ["field", "grassy field"], "beach": ["beach", "sandy beach"]}
_POSITION_ANSWERS = {"left": ["left", "on the left"], "middle": ["middle", "in the middle"],
                     "right": ["right", "on the right"]}


def _phrasings(kind: str, attrs: dict) -> list[str]:
    two = attrs["count"] == 2
    noun = _NOUNS[attrs["kind"]][1 if two else 0]
    be = "are" if two else "is"
    thing = f"the {noun}"
    if kind == "colour":
        if attrs["kind"] == "person":
            shirts, owner = ("shirts", "the people's") if two else ("shirt", "the person's")
            return [f"what colour {be} the {shirts}?", f"what color {be} {owner} {shirts}?",
                    "what is the main colour in the picture?"]
        return [f"what colour {be} {thing}?", f"what color {be} {thing}?", "what colour is the object?",
                "what is the main colour in the picture?"]
    if kind == "kind":
        return ["what is in the picture?", "what is this?", "what kind of object is shown?",
                "what is the main object in the image?"]
    if kind == "category":
        return ["is this a face, a person, an animal, a sign or a place?", "what category is this image?",
                "what type of scene is this?"]
    if kind == "place":
        return ["where is this?", "where was this picture taken?", "what place is this?", "where is this scene?"]
    if kind == "count":
        return [f"how many {_NOUNS[attrs['kind']][1]} are there?", "how many objects are there?",
                "how many things are in the picture?"]
    if kind == "position":
        return [f"{'are' if two else 'is'} {thing} on the left, in the middle or on the right?",
                f"which side of the picture {be} {thing} on?", "where in the picture is the object?"]
    if kind == "text":
        return ["what does the sign say?", "what is written on the sign?", "what word is on the sign?"]
    if kind == "size":
        return [f"{'are' if two else 'is'} {thing} small or large?", f"how big {be} {thing}?",
                "is the object small or large?"]
    raise ValueError(f"unknown question type {kind!r}")


def answers(kind: str, attrs: dict) -> list[str]:
    """Accepted answers of a question type (the first is the one the model is trained to give)."""
    if kind == "colour":
        return [attrs["colour"]]
    if kind == "kind":
        singular, plural = _NOUNS[attrs["kind"]]
        return list(dict.fromkeys([*_KIND_ANSWERS.get(attrs["kind"], [singular]), singular, plural]))
    if kind == "category":
        return [attrs["category"]]
    if kind == "place":
        return list(_PLACE_ANSWERS[attrs["place"]])
    if kind == "count":
        return ["two" if attrs["count"] == 2 else "one"]
    if kind == "position":
        return list(_POSITION_ANSWERS[attrs["position"]])
    if kind == "text":
        return [attrs["text"]]
    if kind == "size":
        return [attrs["size"]]
    raise ValueError(f"unknown question type {kind!r}")


def types_for(attrs: dict) -> list[str]:
    """The question types that make sense for a scene (sign text only for signs)."""
    return [t for t in QUESTION_TYPES if t != "text" or attrs["category"] == "sign"]


def scene_question(kind: str, attrs: dict, rng: np.random.Generator) -> dict:
    """One question of type ``kind`` in a random phrasing: ``{"type", "question", "answers"}``."""
    options = _phrasings(kind, attrs)
    return {"type": kind, "question": options[int(rng.integers(len(options)))], "answers": answers(kind, attrs)}


def question_set(scenes: SceneSet, seed: int) -> list[list[dict]]:
    """Per scene one question of every type that applies, phrasings drawn from ``(seed, scene)``."""
    out = []
    for i, attrs in enumerate(scenes.attributes):
        rng = np.random.default_rng([seed, 1212, i])
        out.append([scene_question(kind, attrs, rng) for kind in types_for(attrs)])
    return out
