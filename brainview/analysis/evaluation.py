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


#: ``--fmri-repeats``: each trial's pattern from one repeat, the mean of two, or the bundle's mean of all
FMRI_REPEATS = ("1", "2", "all")


def evaluate_bundle(bundle, decoder, stage: str, repeats: int | None, seed: int, captions: bool = True,
                    fmri_repeats: str = "all", metrics: tuple[str, ...] = EVAL_METRICS, trials: int | None = None,
                    progress=None) -> dict:
    """Retrieval and caption metrics of one stage on the test set (DESIGN.md §4), from the mean of every
    repeat (``test/fmri.npy``: ``fmri_repeats="all"``) or from single trials (``"1"``, ``"2"``: needs
    ``test/fmri_repeats.npy``). From single trials the headline figures are of each trial's first valid
    repeat(s) (what a brain-computer interface gets); ``"each_window"`` gives their mean over every
    repeat taken in turn (:func:`~brainview.bundle.repeats.window_patterns`) and ``"versus_all"`` each
    figure's paired difference from the mean of all repeats. ``metrics``: the caption metrics to compute.
    ``trials``: caption and ask only a subset drawn with ``seed`` (retrieval keeps every trial);
    ``progress(done, total)`` after each batch of captions; Ctrl-C while captioning scores what was
    captioned, marked partial (``"trials": {"partial": true}``), and stops there."""
    options = {"metrics": metrics, "trials": trials, "progress": progress}
    if fmri_repeats not in FMRI_REPEATS:
        raise UserError(f"fMRI repeats must be one of {', '.join(FMRI_REPEATS)}, not {fmri_repeats!r}")
    if fmri_repeats == "all":
        return {"stage": int(stage[-1]), "fmri_repeats": "all",
                **_evaluate_patterns(bundle, decoder, stage, bundle.fmri, repeats, seed, captions, **options)[0]}
    from brainview.bundle.repeats import window_patterns

    if bundle.fmri_repeats is None:
        raise UserError(f"{bundle.name} holds only each image's mean pattern (no test/fmri_repeats.npy); "
                        f"--fmri-repeats {fmri_repeats} needs its single trials")
    size = int(fmri_repeats)
    counts = bundle.repeat_counts
    windows = []
    for start in range(bundle.max_repeats):
        windows.append(_evaluate_patterns(bundle, decoder, stage,
                                          window_patterns(bundle.fmri_repeats, counts, size, start),
                                          repeats, seed, captions, questions=start == 0, **options))
        if windows[-1][0].get("trials", {}).get("partial"):  # Ctrl-C: what the first windows have, no comparison
            return {"stage": int(stage[-1]), "fmri_repeats": fmri_repeats, **windows[0][0]}
    _, mean_paired = _evaluate_patterns(bundle, decoder, stage, bundle.fmri, repeats, seed, captions,
                                        questions=False, **options)
    return {"stage": int(stage[-1]), "fmri_repeats": fmri_repeats, **windows[0][0],
            "trials_with_fewer_repeats": int((counts < size).sum()),
            "versus_all": paired_differences(windows[0][1], mean_paired),
            "each_window": {**_mean_of_windows([w[0] for w in windows]),
                            "versus_all": paired_differences(_mean_per_trial([w[1] for w in windows]), mean_paired)}}


def _mean_per_trial(paired: list[dict]) -> dict:
    """Each trial's score averaged over windows (what :func:`paired_differences` compares)."""
    import numpy as np

    return {kind: {name: np.mean([np.asarray(p[kind][name], dtype=np.float64) for p in paired], axis=0)
                   for name in paired[0][kind] if all(name in p[kind] for p in paired)}
            for kind in ("retrieval", "captioning")}


def paired_differences(these: dict, mean: dict) -> dict[str, dict]:
    """Per retrieval direction (top-1 among all trials) and caption metric: the mean over trials of these
    patterns' score less the same trial's score from the mean of all repeats, with its 95% interval
    (normal approximation over trials): paired, so it says whether single trials decode worse."""
    import numpy as np

    out = {}
    for kind in ("retrieval", "captioning"):
        for name, values in these[kind].items():
            if name in mean[kind]:
                difference = np.asarray(values, dtype=np.float64) - np.asarray(mean[kind][name], dtype=np.float64)
                out[name] = {"difference": float(difference.mean()), "ci95": _mean_interval(difference),
                             "n": int(difference.size), "mean_of_all": float(np.mean(mean[kind][name])),
                             **({"pool": int(difference.size)} if kind == "retrieval" else {})}
    return out


def _evaluate_patterns(bundle, decoder, stage: str, fmri, repeats: int | None, seed: int, captions: bool,
                       metrics: tuple[str, ...] = EVAL_METRICS, questions: bool = True, trials: int | None = None,
                       progress=None) -> tuple[dict, dict]:
    """The figures of one set of patterns, and per trial what a paired comparison needs:
    ``{"retrieval": {direction: hits}, "captioning": {metric: scores}}``."""
    from brainview.analysis.caption_pass import caption_all, seeded_subset
    from brainview.decoding.retrieval import evaluate_stage, trial_hits

    tokens, retrieval = evaluate_stage(decoder.model, stage, fmri, bundle.image_embeddings,
                                       bundle.text_embeddings, bundle.text_index, repeats=repeats, seed=seed)
    texts = "text_given_brain" in retrieval
    paired = {"retrieval": trial_hits(tokens, bundle.image_embeddings,
                                      decoder.model.project_text(tokens) if texts else None,
                                      bundle.text_embeddings, bundle.text_index),
              "captioning": {}}
    captioning: dict[str, float | None] = dict.fromkeys(metrics)
    intervals: dict[str, dict] = {}
    missing: dict[str, str] = {}
    subset, interrupted = seeded_subset(len(tokens), trials, seed), False
    if not captions:
        missing = dict.fromkeys(metrics, "captions were not requested (--no-captions)")
    elif not decoder.can_caption:
        missing = dict.fromkeys(metrics, f"no captions: {decoder.captions_missing}")
    else:
        from brainview.decoding.metrics import caption_metrics

        predictions, interrupted = caption_all(decoder, tokens[subset], progress)
        subset = subset[:len(predictions)]
        references = [bundle.captions[i] for i in subset]
        report = caption_metrics(predictions, references, metrics=list(metrics))
        captioning.update({k: report.means.get(k) for k in metrics})
        missing = {k: v for k, v in report.missing.items() if k in metrics}
        intervals = caption_intervals(report, predictions, references, seed)
        paired["captioning"] = dict(report.per_caption)
    qa: dict = {}
    if not questions:
        missing["qa"] = "asked of the first window only"
    elif bundle.questions is None:
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
    result = {"retrieval": retrieval, "captioning": captioning, "caption_intervals": intervals, "table": EVAL_TABLE,
              "qa": qa, "missing": missing}
    if trials is not None or interrupted:
        result["trials"] = {"captioned": len(subset), "of": len(tokens), "seed": seed, "partial": interrupted}
    return result, paired


def caption_intervals(report, predictions: list[str], references: list[list[str]], seed: int) -> dict[str, dict]:
    """Per caption metric: the 95% interval of its mean over trials (normal approximation) and chance, the
    same captions scored against a seeded derangement of the trials' references (``chance_ci95`` likewise)."""
    import numpy as np

    from brainview.decoding.metrics import caption_metrics

    computed = [m for m in report.means if m in report.per_caption]
    if not computed or len(predictions) < 2:
        return {}
    n = len(predictions)
    order = np.random.default_rng(seed).permutation(n)
    shift = order[(np.argsort(order) + 1) % n]  # every trial gets another trial's references
    control = caption_metrics(predictions, [references[i] for i in shift], metrics=computed)
    return {m: {"ci95": _mean_interval(report.per_caption[m]), "chance": control.means.get(m),
                "chance_ci95": _mean_interval(control.per_caption[m]) if m in control.per_caption else None}
            for m in computed}


def _mean_interval(values) -> list[float]:
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    half = 1.96 * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return [float(values.mean() - half), float(values.mean() + half)]


def _mean_of_windows(windows: list[dict]) -> dict:
    """The mean over windows of each figure; each interval the mean of the windows' intervals, which is at
    least as wide as the interval of the mean (the windows share their seeded draws and trials)."""
    def mean(values):
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if len(values) == len(windows) else None

    first = windows[0]
    retrieval = {d: {**r, "top1": mean(w["retrieval"][d]["top1"] for w in windows),
                     "ci95": [mean(w["retrieval"][d]["ci95"][i] for w in windows) for i in (0, 1)]}
                 for d, r in first["retrieval"].items()}
    captioning = {m: mean(w["captioning"][m] for w in windows) for m in first["captioning"]}
    intervals = {m: {"ci95": [mean(w["caption_intervals"][m]["ci95"][i] for w in windows) for i in (0, 1)],
                     "chance": mean(w["caption_intervals"][m]["chance"] for w in windows)}
                 for m in first["caption_intervals"]}
    return {"windows": len(windows), "retrieval": retrieval, "captioning": captioning, "caption_intervals": intervals}


def evaluate_study(decoding, stage: str, repeats: int | None = None, seed: int = 42,
                   captions: bool = True, fmri_repeats: str = "all") -> dict[str, Any]:
    """Each subject's ``brainview eval`` result (``decoding.evaluate``: a
    :class:`~brainview.state.study.StudyDecoding`) and, per figure, the mean and spread across subjects."""
    subjects = {s: decoding.evaluate(s, stage, repeats, seed, captions, fmri_repeats) for s in decoding.study.ids}
    return {"stage": int(stage[-1]), "fmri_repeats": fmri_repeats, "subjects": subjects,
            "mean": summarize_evaluations(subjects),
            "table": EVAL_TABLE}
