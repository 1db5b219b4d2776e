"""Models compared on the same test trials (Qt-free): each model's table scores, 95% bootstrap intervals
over trials, the paired difference of every pair of models and the per-trial table.

The intervals resample trials (the same resamples for every model, so differences are paired) and are
intervals of the mean per-caption score. For BLEU and CIDEr-D the table's own value is corpus-level
(``caption_metrics``' ``means``), so it can lie a little outside the per-caption mean's interval;
both are reported. A pair's difference is significant when its interval excludes zero.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from brainview.analysis.model_captions import ModelCaptions
from brainview.decoding.metric_tables import MetricTable
from brainview.decoding.metrics import caption_metrics
from brainview.errors import UserError

N_RESAMPLES = 2000


def _interval(samples: np.ndarray) -> list[float]:
    return [float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))]


def common_trials(models: list[ModelCaptions]) -> list[int]:
    """Indices of the trials every model has a caption for."""
    n = len(models[0].captions)
    return [i for i in range(n) if all(m.captions[i] is not None for m in models)]


def compare_models(models: list[ModelCaptions], references: list[list[str]], trial_ids: list[str],
                   table: MetricTable, seed: int = 0, n_resamples: int = N_RESAMPLES) -> dict:
    """Scores of every model on the trials all of them captioned, with intervals and paired differences."""
    if not models:
        raise UserError("give at least one model's captions (--captions NAME=FILE)")
    trials = common_trials(models)
    if len(trials) < 2:
        raise UserError(f"only {len(trials)} test trials have a caption from every model; nothing to compare")
    refs = [references[i] for i in trials]
    reports = {m.name: caption_metrics([m.captions[i] for i in trials], refs, table.metrics) for m in models}
    resamples = np.random.default_rng(seed).integers(0, len(trials), size=(n_resamples, len(trials)))
    scores, missing = {}, {}
    for name, report in reports.items():
        scores[name] = {}
        for metric in table.metrics:
            if metric not in report.per_caption:
                missing[metric] = report.missing.get(metric, "not computed")
                continue
            per = report.per_caption[metric]
            scores[name][metric] = {"value": report.means[metric], "mean": float(per.mean()),
                                    "ci95": _interval(per[resamples].mean(axis=1))}
    computed = [m for m in table.metrics if m not in missing]
    pairs = []
    for a, b in combinations(reports, 2):
        for metric in computed:
            diff = reports[a].per_caption[metric] - reports[b].per_caption[metric]
            ci = _interval(diff[resamples].mean(axis=1))
            pairs.append({"a": a, "b": b, "metric": metric, "difference": float(diff.mean()), "ci95": ci,
                          "significant": bool(ci[0] > 0 or ci[1] < 0)})
    primary = table.primary if table.primary in computed else (computed[0] if computed else None)
    ranking = sorted(reports, key=lambda n: -scores[n][primary]["value"]) if primary else list(reports)
    per_trial = {"trial": [trial_ids[i] for i in trials]}
    for name, report in reports.items():
        per_trial[f"{name} caption"] = [next(m for m in models if m.name == name).captions[i] for i in trials]
        for metric in computed:
            per_trial[f"{name} {metric}"] = [float(x) for x in report.per_caption[metric]]
    return {"table": table.name, "title": table.title, "n_trials": len(trials),
            "excluded_trials": len(models[0].captions) - len(trials), "models": [m.to_json() for m in models],
            "ranking_metric": primary, "ranking": ranking, "scores": scores, "pairs": pairs, "missing": missing,
            "per_trial": per_trial}
