"""The demo world's scenes: deterministic, well-formed, and captions that name the content."""

import numpy as np

from training.demo_world.scenes import (
    COLOURS, KINDS, PLACES, SPLIT_SIZES, SceneSet, generate_scenes, scenes_after_splits, split_scenes, vocabulary,
)


def test_scenes_are_deterministic_and_prefix_stable():
    a, b = generate_scenes(12, seed=3), generate_scenes(20, seed=3)
    assert a.images.shape == (12, 64, 64, 3) and a.images.dtype == np.uint8
    np.testing.assert_array_equal(a.images, b.images[:12])
    assert a.captions == b.captions[:12] and a.attributes == b.attributes[:12]
    assert not np.array_equal(generate_scenes(12, seed=4).images, a.images)


def test_every_caption_names_colour_category_noun_and_place():
    scenes = generate_scenes(150, seed=0)
    place_words = {p: p for p in PLACES}
    for caps, attrs in zip(scenes.captions, scenes.attributes):
        assert len(caps) == 5 and len(set(caps)) >= 3
        noun = {"person": "people" if attrs["count"] == 2 else ("person", "man")}.get(attrs["kind"], attrs["kind"])
        for caption in caps:
            words = caption.split()
            assert attrs["colour"] in words
            assert place_words[attrs["place"]] in words
            assert any(w.startswith(n) for w in words for n in np.atleast_1d(noun))
            if attrs["text"]:
                assert attrs["text"] in words
            assert ("two" in words) == (attrs["count"] == 2)


def test_the_place_category_has_its_word_in_one_caption_of_each_place_scene():
    """Every other category's word is its caption noun; "place" must be a word of the captions too,
    or the retrieval model cannot know it (issue 11), and only place scenes may use it."""
    scenes = generate_scenes(150, seed=0)
    for caps, attrs in zip(scenes.captions, scenes.attributes):
        naming = sum("place" in caption.split() for caption in caps)
        assert naming == (1 if attrs["category"] == "place" else 0), caps


def test_content_is_balanced_and_vocabulary_small():
    scenes = generate_scenes(400, seed=1)
    categories = [a["category"] for a in scenes.attributes]
    for category in ("face", "person", "animal", "sign", "place"):
        assert categories.count(category) > 40
    assert {a["colour"] for a in scenes.attributes} == set(COLOURS)
    assert 40 <= len(vocabulary(scenes)) <= 200


def test_categories_differ_in_pixels():
    """Same place, different category: the images are not near-identical backgrounds."""
    scenes = generate_scenes(200, seed=2)
    background = np.median(scenes.images.reshape(len(scenes), -1), axis=0)
    changed = np.abs(scenes.images.reshape(len(scenes), -1) - background).mean(1)
    assert changed.min() > 5


def test_split_sizes_and_disjointness():
    splits = split_scenes(0, size="small")
    assert {k: len(v) for k, v in splits.items()} == {"train": 400, "val": 60, "test": 60}
    assert isinstance(splits["test"], SceneSet)
    train = {s.tobytes() for s in splits["train"].images}
    assert not any(s.tobytes() in train for s in splits["test"].images)


def test_scenes_after_the_splits_continue_the_stream():
    """The image encoder's extra pre-training scenes are the stream's next scenes, never a split's."""
    n_splits = sum(SPLIT_SIZES["small"].values())
    extra = scenes_after_splits(5, seed=0, size="small")
    stream = generate_scenes(n_splits + 5, seed=0)
    np.testing.assert_array_equal(extra.images, stream.images[n_splits:])
    assert extra.captions == stream.captions[n_splits:]
    seen = {s.tobytes() for split in split_scenes(0, size="small").values() for s in split.images}
    assert not any(s.tobytes() in seen for s in extra.images)
    assert {a["kind"] for a in generate_scenes(200, seed=5).attributes} == set(KINDS)
