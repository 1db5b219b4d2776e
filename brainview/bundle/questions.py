"""The optional question-answer set of a bundle (``test/questions.json``) and the manifest's
question settings, validated when the bundle opens (DESIGN.md §3).

``test/questions.json``: per test trial, in trial order, a list (possibly empty) of
``{"type": str, "question": str, "answers": [str, ...]}``; every string non-empty. A bundle
without the file is valid and simply has no QA set.
"""

from __future__ import annotations

from typing import Any

from brainview.bundle import format as F

_ITEM = '{"type": str, "question": str, "answers": [str, ...]}'
#: VQA v2 gives ten answers per question
MAX_ANSWERS = 100


def check_question_settings(vlm: dict[str, Any]) -> str | None:
    """The problem with the manifest's ``vlm`` question settings, or None."""
    settings = {**F.VLM_DEFAULTS, **vlm}
    template = settings["question_prompt"]
    if not isinstance(template, str) or template.count("{q}") != 1:
        return f'"vlm.question_prompt" must be a text with "{{q}}" (the question) exactly once, got {template!r}'
    try:
        template.format(q="")
    except (IndexError, KeyError, ValueError):
        return f'"vlm.question_prompt" may contain no other "{{...}}" field than "{{q}}", got {template!r}'
    for key in ("dialogue_turns", "max_answer_tokens"):
        value = settings[key]
        least = 0 if key == "dialogue_turns" else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            return f'"vlm.{key}" must be an integer of at least {least}, got {value!r}'
    return None


def check_questions(raw: Any, n_trials: int) -> list[list[dict[str, Any]]]:
    """The QA set parsed from ``test/questions.json``, validated. Raises ValueError with the problem."""
    if not isinstance(raw, list):
        raise ValueError(f"must be a list with, per test trial, a list of {_ITEM}")
    if len(raw) != n_trials:
        raise ValueError(f"has questions for {len(raw)} trials, expected {n_trials}")
    for trial, items in enumerate(raw):
        if not isinstance(items, list):
            raise ValueError(f"trial {trial}: must be a list of {_ITEM}")
        for k, item in enumerate(items):
            problem = _item_problem(item)
            if problem:
                raise ValueError(f"trial {trial}, question {k}: {problem}")
    return raw


def _item_problem(item: Any) -> str | None:
    if not isinstance(item, dict) or set(item) - {"type", "question", "answers"}:
        return f"must be an object {_ITEM}"
    for key in ("type", "question"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            return f'"{key}" must be a non-empty text'
    if len(item["question"]) > F.MAX_QUESTION_CHARS or len(item["type"]) > F.MAX_QUESTION_CHARS:
        return f'"question" and "type" may have at most {F.MAX_QUESTION_CHARS:,} characters'
    answers = item.get("answers")
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a.strip() for a in answers):
        return '"answers" must be a non-empty list of non-empty texts'
    if len(answers) > MAX_ANSWERS or any(len(a) > F.MAX_QUESTION_CHARS for a in answers):
        return f'"answers" may hold at most {MAX_ANSWERS} texts of at most {F.MAX_QUESTION_CHARS:,} characters'
    return None
