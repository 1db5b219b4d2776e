"""``brainview roi-table STUDY``, ``brainview eval STUDY`` and ``brainview table STUDY``: the study forms of the
commands.

The first two return ``(payload, lines)`` for ``cli_output.emit``: the JSON object and the text table.
"""

from __future__ import annotations

import numpy as np

from brainview.analysis.evaluation import evaluate_study
from brainview.analysis.roi_methods import METHOD_LABELS
from brainview.analysis.study import load_study
from brainview.analysis.tables import Table, subjects_table
from brainview.decoding.metric_tables import TABLES
from brainview.cli.output import repeats_label
from brainview.errors import UserError
from brainview.cli.regions import method_options, read_truth
from brainview.state.study import StudyDecoding


def _stage(study, stage: int | None) -> str:
    """The stage asked for, which every subject must have (default: the last stage all share)."""
    shared = None
    for s in study.ids:
        stages = study.bundle(s).stages
        shared = [x for x in (shared or stages) if x in stages]
    if not shared:
        raise UserError(f"{study.path}: the subjects share no stage")
    if stage is None:
        return shared[-1]
    name = f"stage{stage}"
    if name not in shared:
        raise UserError(f"not every subject of {study.path} has {name}; they share {', '.join(shared)}")
    return name


def _decoding(args, captions: bool = True) -> StudyDecoding:
    study = load_study(args.path)
    for s in study.ids:
        study.bundle(s)  # a broken bundle is reported before any model loads
    return StudyDecoding(study, device=args.device, load_language_models=captions,
                         cpu_precision=args.cpu_precision)


def subjects_table_study(args) -> Table:
    """The subjects side by side, as the Subjects panel shows them and exports them: each subject's
    recorded figures, else retrieval computed now (``--stage``, which every subject must have; by default
    stage 2, or a subject's last stage where it has no stage 2, as in the panel)."""
    decoding = _decoding(args, captions=False)
    stage = "stage2" if args.stage is None else _stage(decoding.study, args.stage)
    return subjects_table(decoding.summaries(stage))


def roi_table_study(args) -> tuple[dict, list[str]]:
    """{"stage", "subjects": {subject: {ROI: {"caption", "n_voxels", "group"}}}} and Table 3 as text
    (rows ROIs, columns subjects)."""
    decoding = _decoding(args)
    study = decoding.study
    stage = _stage(study, args.stage)
    for s in study.ids:
        decoder = decoding.decoder(s)
        if not decoder.can_caption:
            raise UserError(f"cannot caption the ROIs of {s}: {decoder.captions_missing}")
    if args.out:
        raise UserError("--out saves one bundle's ROI table; for a study, use --json")
    options = method_options(args)[args.method]
    options.pop("scale", None)  # the paper's scale is the study's own argument
    table = decoding.roi_table(stage, scale=args.scale, method=args.method, **options)
    names = decoding.roi_names()
    width = max(len(n) for n in names)
    lines = [f"{study.name}: {stage}, {METHOD_LABELS[args.method]}, {len(study.ids)} subjects", ""]
    for name in names:
        lines.append(f"  {name:<{width}}")
        for s in study.ids:
            row = table[s].get(name)
            shown = f"{row['caption']}  ({row['n_voxels']} voxels)" if row else "(no such ROI)"
            lines.append(f"    {s}  {shown}")
    payload = {"stage": int(stage[-1]), "method": args.method, "subjects": table}
    if args.evaluate:
        payload["evaluation"] = evaluate_study_rois(decoding, stage, method_options(args), read_truth(args.truth),
                                                    args.device)
        lines += study_evaluation_lines(payload["evaluation"])
    return payload, lines


def evaluate_study_rois(decoding: StudyDecoding, stage: str, options: dict, truth: dict | None, device: str) -> dict:
    """The held-out evaluation of the ROI descriptions for every subject, and per method the mean r over
    subjects with its sd."""
    from brainview.analysis.roi_evaluation import heldout_prediction
    from brainview.decoding.language import LanguageProbe

    subjects = {}
    for s in decoding.study.ids:
        decoder = decoding.decoder(s)
        bundle = decoder.bundle
        regions = {n: bundle.roi_voxels(n) for n in bundle.rois}
        subjects[s] = heldout_prediction(decoder, LanguageProbe.load(bundle, device=device), regions, stage,
                                         truth=truth, options=options)
    methods = list(next(iter(subjects.values()))["summary"])
    mean = {}
    for m in methods:
        values = [subjects[s]["summary"][m]["mean_r"] for s in subjects if m in subjects[s]["summary"]]
        mean[m] = {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}
    return {"subjects": subjects, "mean": mean}


def study_evaluation_lines(result: dict) -> list[str]:
    subjects = list(result["subjects"])
    methods = list(result["mean"])
    lines = ["", "held-out prediction of each ROI's response by its caption: mean r over the ROIs "
                 "(split halves, 95% bootstrap interval)", "  " + " " * 10 + "".join(f"{s:>24}" for s in subjects)
             + "      mean ± sd"]
    for m in methods:
        cells = []
        for s in subjects:
            row = result["subjects"][s]["summary"].get(m)
            cells.append(f"{row['mean_r']:+.3f} [{row['ci95'][0]:+.2f}, {row['ci95'][1]:+.2f}]" if row else "—")
        lines.append(f"  {m:<10}" + "".join(f"{c:>24}" for c in cells)
                     + f"   {result['mean'][m]['mean']:+.3f} ± {result['mean'][m]['sd']:.3f}")
    return lines


def eval_study(args) -> tuple[dict, list[str]]:
    """Each subject's ``brainview eval`` and, per figure, the mean, sd, min and max across subjects."""
    if args.repeats is not None and args.repeats < 1:
        raise UserError("--repeats must be at least 1")
    decoding = _decoding(args, captions=not args.no_captions)
    study = decoding.study
    stage = _stage(study, args.stage)
    if not args.no_captions:
        for s in study.ids:
            decoder = decoding.decoder(s)
            if study.bundle(s).vlm.get("captioner") and not decoder.can_caption:
                raise UserError(f"cannot caption with {s}'s captioner ({decoder.captions_missing}); "
                                "pass --no-captions for retrieval only")
    result = evaluate_study(decoding, stage, args.repeats, args.seed, captions=not args.no_captions,
                            fmri_repeats=args.fmri_repeats)
    subjects = study.ids
    lines = [f"{study.name}: {stage}, {len(subjects)} subjects, {repeats_label(args.fmri_repeats)}", "",
             f"  {'':<18} " + " ".join(f"{s:>8}" for s in subjects) + "      mean ± sd"]
    first = result["subjects"][subjects[0]]
    for direction in first["retrieval"]:
        values = [result["subjects"][s]["retrieval"][direction]["top1"] for s in subjects]
        spread = result["mean"]["retrieval"][direction]
        lines.append(f"  {direction:<18} " + " ".join(f"{v:8.3f}" for v in values)
                     + f"   {spread['mean']:.3f} ± {spread['sd']:.3f}")
    for metric in first["captioning"]:
        values = [result["subjects"][s]["captioning"][metric] for s in subjects]
        spread = result["mean"]["captioning"][metric]
        if spread["mean"] is None:
            lines.append(f"  {metric:<18} missing: {first['missing'].get(metric, '')}")
            continue
        lines.append(f"  {metric:<18} " + " ".join(f"{v:8.3f}" if v is not None else f"{'—':>8}" for v in values)
                     + f"   {spread['mean']:.3f} ± {spread['sd']:.3f}")
    pools = {s: next(iter(result["subjects"][s]["retrieval"].values()))["pool"] for s in subjects}
    lines += ["", "  retrieval pools: " + ", ".join(f"{s} {p}-way" for s, p in pools.items()),
              f"  caption metrics: {TABLES[result['table']].title}"]
    return result, lines
