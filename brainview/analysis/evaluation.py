"""Evaluating a bundle (DESIGN.md §4): retrieval, caption metrics and the question-answer set of one stage
on the test set, and a study's subjects side by side. ``brainview eval``, the study view and the demo
world's builder all call these, so every figure is computed one way.
"""

from __future__ import annotations

from typing import Any

from brainview.analysis.study import summarize_evaluations
from brainview.decoding.metric_tables import TABLES
from brainview.errors import UserError

#: ``eval``'s caption metrics follow the MICCAI paper's Table 2 (not BrainHub's table: see ``brainview score``)
EVAL_TABLE = "miccai"
EVAL_METRICS = tuple(TABLES[EVAL_TABLE].metrics)


def stage_name(bundle, stage: int | None) -> str:
    """The stage asked for by number (default: the bundle's last), as the bundle names it."""
    if stage is None:
        return bundle.stages[-1]
    name = f"stage{stage}"
    if name not in bundle.stages:
        raise UserError(f"the bundle has no {name}; it has {', '.join(bundle.stages)}")
    return name


def evaluate_bundle(bundle, decoder, stage: str, repeats: int | None, seed: int, captions: bool = True,
                    trials: int | None = None, progress=None) -> dict:
    """Retrieval and caption metrics of one stage on the test set (DESIGN.md §4). ``trials``: caption
    and ask only a subset drawn with ``seed`` (retrieval keeps every trial); ``progress(done, total)``
    after each batch of captions; Ctrl-C while captioning scores what was captioned, marked partial."""
    from brainview.analysis.caption_pass import caption_all, seeded_subset
    from brainview.decoding.retrieval import evaluate_stage

    tokens, retrieval = evaluate_stage(decoder.model, stage, bundle.fmri, bundle.image_embeddings,
                                       bundle.text_embeddings, bundle.text_index, repeats=repeats, seed=seed)
    captioning: dict[str, float | None] = dict.fromkeys(EVAL_METRICS)
    missing: dict[str, str] = {}
    subset, interrupted = seeded_subset(len(tokens), trials, seed), False
    if not captions:
        missing = dict.fromkeys(EVAL_METRICS, "captions were not requested (--no-captions)")
    elif not decoder.can_caption:
        missing = dict.fromkeys(EVAL_METRICS, f"no captions: {decoder.captions_missing}")
    else:
        from brainview.decoding.metrics import caption_metrics

        predictions, interrupted = caption_all(decoder, tokens[subset], progress)
        subset = subset[:len(predictions)]
        report = caption_metrics(predictions, [bundle.captions[i] for i in subset], metrics=list(EVAL_METRICS))
        captioning.update({k: report.means.get(k) for k in EVAL_METRICS})
        missing = {k: v for k, v in report.missing.items() if k in EVAL_METRICS}
    qa: dict = {}
    if bundle.questions is None:
        missing["qa"] = "the bundle has no question-answer set (test/questions.json)"
    elif interrupted:
        missing["qa"] = "interrupted while captioning (Ctrl-C)"
    elif captions and decoder.can_caption:
        from brainview.decoding.questions import evaluate_questions

        qa, skipped = evaluate_questions(decoder, [bundle.questions[i] for i in subset], tokens[subset],
                                         bundle.image_embeddings[subset])
        if skipped:
            first = next(iter(skipped.items()))
            missing["qa_questions"] = (f"{len(skipped)} question(s) left out of the QA accuracy; "
                                       f"{first[0]} {first[1]}" + (" (and others)" if len(skipped) > 1 else ""))
    else:
        missing["qa"] = missing.get("meteor", "no captioner")
    result = {"stage": int(stage[-1]), "retrieval": retrieval, "captioning": captioning, "table": EVAL_TABLE, "qa": qa,
              "missing": missing}
    if trials is not None or interrupted:
        result["trials"] = {"captioned": len(subset), "of": len(tokens), "seed": seed, "partial": interrupted}
    return result


def evaluate_study(decoding, stage: str, repeats: int | None = None, seed: int = 42,
                   captions: bool = True) -> dict[str, Any]:
    """Each subject's ``brainview eval`` result (``decoding.evaluate``: a
    :class:`~brainview.state.study.StudyDecoding`) and, per figure, the mean and spread across subjects."""
    subjects = {s: decoding.evaluate(s, stage, repeats, seed, captions) for s in decoding.study.ids}
    return {"stage": int(stage[-1]), "subjects": subjects, "mean": summarize_evaluations(subjects), "table": EVAL_TABLE}
