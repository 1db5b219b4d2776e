"""Questions about a pattern: the prompt of BLIP-2's VQA format, dialogue history, and the VQA metric.

BLIP-2 answers a question by generating after the prompt ``"Question: {q} Answer:"`` (the
manifest's ``vlm.question_prompt``); a dialogue prepends the earlier turns, each as the same
template followed by its answer, oldest first. The history is capped twice: at most
``max_turns`` earlier turns, and the oldest ones are dropped while the prompt does not fit the
language model's budget (a ``fits`` test that the caller gives, in tokens).

Accuracy is exact match after the VQA evaluation's normalization (lower case, punctuation and
articles removed, number words written as digits), reported per question type with a Wilson 95%
interval and the type's chance level (always giving its most frequent answer).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from brainview.bundle.format import VLM_DEFAULTS

DEFAULT_QUESTION_PROMPT = VLM_DEFAULTS["question_prompt"]
MAX_HISTORY_TURNS = VLM_DEFAULTS["dialogue_turns"]

_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
            "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
_PUNCTUATION = re.compile(r"[^\w\s]")


@dataclass(frozen=True)
class Turn:
    """One answered question of a dialogue."""

    question: str
    answer: str


def question_prompt(question: str, history: Sequence[Turn] = (), template: str = DEFAULT_QUESTION_PROMPT,
                    max_turns: int = MAX_HISTORY_TURNS, fits: Callable[[str], bool] | None = None) -> str:
    """The prompt for ``question`` after the last ``max_turns`` turns of ``history``.

    With ``fits``, the oldest remaining turns are dropped until ``fits(prompt)`` holds (the
    question alone is returned even if it does not fit; the model then truncates nothing, the
    caller decides).
    """
    question = " ".join(str(question).split())
    turns = list(history)[-max_turns:] if max_turns > 0 else []
    while True:
        parts = [f"{template.format(q=t.question)} {t.answer}" for t in turns]
        prompt = " ".join([*parts, template.format(q=question)])
        if not turns or fits is None or fits(prompt):
            return prompt
        turns = turns[1:]


def normalize_answer(text: str) -> str:
    """VQA-style normal form: lower case, punctuation and articles removed, number words as digits."""
    words = _PUNCTUATION.sub(" ", str(text).lower()).split()
    return " ".join(_NUMBERS.get(w, w) for w in words if w not in _ARTICLES)


def is_correct(prediction: str, answers: Sequence[str]) -> bool:
    """Exact match of the normalized prediction with any normalized accepted answer."""
    return normalize_answer(prediction) in {normalize_answer(a) for a in answers}


def wilson_interval(hits: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sensible at 0 and 1, unlike the normal one)."""
    if n == 0:
        return (math.nan, math.nan)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def majority_chance(answers: Sequence[Sequence[str]]) -> float:
    """Accuracy of always giving the most frequent answer (counted once per question)."""
    if not answers:
        return math.nan
    counts = Counter(a for accepted in answers for a in {normalize_answer(x) for x in accepted})
    return counts.most_common(1)[0][1] / len(answers)


def qa_accuracy(types: Sequence[str], answers: Sequence[Sequence[str]], predictions: Sequence[str],
                image_predictions: Sequence[str] | None = None) -> dict[str, dict]:
    """Per question type: accuracy of ``predictions`` with its interval, chance, n, and (given)
    the accuracy of ``image_predictions`` (the true image tokens' answers, the upper bound)."""
    if not (len(types) == len(answers) == len(predictions)):
        raise ValueError("types, answers and predictions must have the same length")
    if image_predictions is not None and len(image_predictions) != len(predictions):
        raise ValueError("image_predictions must have one answer per question")
    out: dict[str, dict] = {}
    for kind in sorted(set(types)):
        rows = [i for i, t in enumerate(types) if t == kind]
        hits = sum(is_correct(predictions[i], answers[i]) for i in rows)
        entry = {"accuracy": hits / len(rows), "ci95": list(wilson_interval(hits, len(rows))),
                 "chance": majority_chance([answers[i] for i in rows]), "n": len(rows)}
        if image_predictions is not None:
            image_hits = sum(is_correct(image_predictions[i], answers[i]) for i in rows)
            entry["image_accuracy"] = image_hits / len(rows)
            entry["image_ci95"] = list(wilson_interval(image_hits, len(rows)))
        else:
            entry["image_accuracy"] = None
        out[kind] = entry
    return out


def evaluate_questions(decoder, questions: Sequence[Sequence[dict]], brain_tokens, image_tokens,
                       batch_size: int = 64) -> tuple[dict[str, dict], dict[str, str]]:
    """:func:`qa_accuracy` of a bundle's QA set: every trial's questions answered from its brain
    tokens and from its true image tokens (one question each, no dialogue); and the questions left
    out, ``{"trial T, question K": why}``: one question the model cannot take costs that question,
    not the evaluation."""
    import numpy as np

    flat = [(trial, k, item) for trial, items in enumerate(questions) for k, item in enumerate(items)]
    if not flat:
        return {}, {}
    rows = np.asarray([trial for trial, _, _ in flat])
    asked = [item["question"] for _, _, item in flat]
    brain, failed = _answers_isolated(decoder, np.asarray(brain_tokens)[rows], asked, batch_size)
    image, failed_image = _answers_isolated(decoder, np.asarray(image_tokens)[rows], asked, batch_size)
    failed.update(failed_image)
    kept = [i for i in range(len(flat)) if i not in failed]
    skipped = {f"trial {flat[i][0]}, question {flat[i][1]}": why for i, why in sorted(failed.items())}
    if not kept:
        return {}, skipped
    return qa_accuracy([flat[i][2]["type"] for i in kept], [flat[i][2]["answers"] for i in kept],
                       [brain[i] for i in kept], [image[i] for i in kept]), skipped


def _answers_isolated(decoder, tokens, asked: list[str], batch_size: int) -> tuple[list[str | None], dict[int, str]]:
    """The decoder's answers batch by batch; a batch that fails is answered one question at a time, and
    each question that still fails is ``None`` with its reason (a cancel still stops everything)."""
    from brainview.errors import Cancelled

    answers: list[str | None] = []
    failed: dict[int, str] = {}
    for start in range(0, len(asked), batch_size):
        stop = min(start + batch_size, len(asked))
        try:
            answers += decoder.answers(tokens[start:stop], asked[start:stop], batch_size=batch_size)
            continue
        except Cancelled:
            raise
        except Exception:  # noqa: BLE001 - some question of the batch: find it below
            pass
        for i in range(start, stop):
            try:
                answers += decoder.answers(tokens[i:i + 1], asked[i:i + 1], batch_size=1)
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of one question is reported, not raised
                answers.append(None)
                failed[i] = f"cannot be answered ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})"
    return answers, failed
