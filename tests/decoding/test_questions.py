"""Questions: BLIP-2's VQA prompt with a capped dialogue, and the VQA metric's normalization."""

from __future__ import annotations

import math

import pytest

from brainview.decoding.questions import (
    DEFAULT_QUESTION_PROMPT, Turn, is_correct, majority_chance, normalize_answer, qa_accuracy, question_prompt,
    wilson_interval,
)


def test_the_default_prompt_is_blip2s_vqa_format():
    assert DEFAULT_QUESTION_PROMPT == "Question: {q} Answer:"
    assert question_prompt("what colour is the dog?") == "Question: what colour is the dog? Answer:"
    assert question_prompt("  where   is this? ") == "Question: where is this? Answer:"


def test_dialogue_prepends_earlier_turns_oldest_first():
    history = [Turn("what is this?", "dog"), Turn("what colour is it?", "red")]
    assert question_prompt("where is it?", history) == (
        "Question: what is this? Answer: dog Question: what colour is it? Answer: red Question: where is it? Answer:")
    assert question_prompt("q?", history, template="Q: {q} A:") == "Q: what is this? A: dog Q: what colour is it? A: red Q: q? A:"


def test_history_is_capped_in_turns_and_in_length():
    history = [Turn(f"question {i}?", f"answer {i}") for i in range(6)]
    capped = question_prompt("last?", history, max_turns=2)
    assert "question 3?" not in capped and "question 4?" in capped and "question 5?" in capped
    assert question_prompt("last?", history, max_turns=0) == "Question: last? Answer:"
    short = question_prompt("last?", history, max_turns=6, fits=lambda text: len(text) <= 80)
    assert len(short) <= 80 and "question 5?" in short and "question 0?" not in short
    # the question alone is kept even when nothing fits
    assert question_prompt("last?", history, fits=lambda text: False) == "Question: last? Answer:"


@pytest.mark.parametrize("raw, normal", [
    ("Red", "red"), ("  The RED.  ", "red"), ("a dog!", "dog"), ("an umbrella", "umbrella"),
    ("two", "2"), ("Two dogs", "2 dogs"), ("none", "0"), ("3", "3"), ("on the left", "on left"),
    ("living-room", "living room"), ("the", ""),
])
def test_normalization_follows_the_vqa_rules(raw, normal):
    assert normalize_answer(raw) == normal


def test_exact_match_after_normalization_against_any_accepted_answer():
    assert is_correct("The Beach.", ["beach", "sandy beach"])
    assert is_correct("a sandy beach", ["beach", "sandy beach"])
    assert is_correct("two", ["2"]) and is_correct("2", ["two"])
    assert not is_correct("beach house", ["beach"])
    assert not is_correct("", ["beach"])


def test_chance_is_the_most_frequent_answer():
    assert majority_chance([["red"], ["red"], ["blue"], ["Red."]]) == 0.75
    # a question with synonyms counts once for each distinct normalized answer
    assert majority_chance([["room", "the room"], ["street"]]) == 0.5
    assert math.isnan(majority_chance([]))


def test_wilson_interval_covers_the_proportion_and_stays_in_0_1():
    lo, hi = wilson_interval(50, 100)
    assert lo < 0.5 < hi and hi - lo == pytest.approx(0.192, abs=0.005)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert 0 < wilson_interval(10, 10)[0] < 1


def test_accuracy_per_type_with_interval_chance_and_the_image_upper_bound():
    types = ["colour", "colour", "colour", "place", "place"]
    answers = [["red"], ["blue"], ["red"], ["beach"], ["room", "living room"]]
    brain = ["red", "red", "Red.", "beach", "street"]
    image = ["red", "blue", "red", "beach", "a living room"]
    result = qa_accuracy(types, answers, brain, image)
    assert set(result) == {"colour", "place"}
    assert result["colour"]["accuracy"] == pytest.approx(2 / 3) and result["colour"]["image_accuracy"] == 1.0
    assert result["colour"]["chance"] == pytest.approx(2 / 3) and result["colour"]["n"] == 3
    assert result["place"]["accuracy"] == 0.5 and result["place"]["image_accuracy"] == 1.0
    lo, hi = result["place"]["ci95"]
    assert lo < 0.5 < hi
    assert qa_accuracy(types, answers, brain)["place"]["image_accuracy"] is None
    with pytest.raises(ValueError):
        qa_accuracy(types, answers, brain[:-1])


class _PickyDecoder:
    """Answers "red" to everything, but cannot take a question with "<image>" in it (as BLIP-2's
    processor, which reads it as its image token); batches of it fail whole."""

    def __init__(self):
        self.calls = 0

    def answers(self, tokens, questions, batch_size=16):
        self.calls += 1
        if any("<image>" in q for q in questions):
            raise ValueError("the prompt holds an <image> token")
        return ["red"] * len(questions)


def test_a_bad_question_costs_one_question_not_the_evaluation():
    import numpy as np

    from brainview.decoding.questions import evaluate_questions

    questions = [[{"type": "colour", "question": "what colour?", "answers": ["red"]}],
                 [{"type": "colour", "question": "<image> what colour?", "answers": ["red"]},
                  {"type": "colour", "question": "and now?", "answers": ["blue"]}]]
    tokens = np.zeros((2, 4, 8), dtype=np.float32)
    qa, skipped = evaluate_questions(_PickyDecoder(), questions, tokens, tokens, batch_size=2)
    assert list(skipped) == ["trial 1, question 0"] and "<image>" in skipped["trial 1, question 0"]
    assert qa["colour"]["n"] == 2 and qa["colour"]["accuracy"] == 0.5


def test_a_cancel_still_stops_the_evaluation():
    import numpy as np

    from brainview.decoding.questions import evaluate_questions
    from brainview.errors import Cancelled

    class Cancelling:
        def answers(self, tokens, questions, batch_size=16):
            raise Cancelled("closing")

    with pytest.raises(Cancelled):
        evaluate_questions(Cancelling(), [[{"type": "t", "question": "q?", "answers": ["a"]}]],
                           np.zeros((1, 4, 8)), np.zeros((1, 4, 8)))


def test_question_length_is_bounded_at_load():
    from brainview.bundle.format import MAX_QUESTION_CHARS
    from brainview.bundle.questions import check_questions

    long = [[{"type": "colour", "question": "why " * MAX_QUESTION_CHARS, "answers": ["red"]}]]
    with pytest.raises(ValueError, match="at most 1,000 characters"):
        check_questions(long, 1)
