"""The commands that measure a bundle: ``eval`` (retrieval, captions, questions), ``ask`` (one question
about one trial), ``roi-table`` (the paper's ROI captions) and ``score`` (caption metrics of any
captions). :func:`add_evaluation_commands` adds their parsers, :data:`EVALUATION_COMMANDS` maps them.
"""

from __future__ import annotations

import json

from brainview.analysis.evaluation import FMRI_REPEATS, evaluate_bundle, stage_name
from brainview.cli.output import emit, open_bundle, read_text, repeats_label, write_table
from brainview.errors import UserError


def add_evaluation_commands(add) -> None:
    """Register ``eval``, ``roi-table``, ``ask`` and ``score`` with the ``add(name, help, ...)`` of
    :func:`brainview.cli.main.build_parser`."""
    p = add("eval", "retrieval and caption metrics on the bundle's test set (a study: every subject, and the mean)")
    p.add_argument("--stage", type=int, choices=(1, 2), help="stage to evaluate (default: the last one)")
    p.add_argument("--repeats", type=int, help="repeats for every direction (default: 30 image, 50 text)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-captions", action="store_true", help="retrieval only")
    p.add_argument("--fmri-repeats", choices=FMRI_REPEATS, default="all",
                   help="decode each trial's first repeat (1), the mean of its first two (2), or the mean of all "
                        "(the default); 1 and 2 also report the mean over every repeat taken in turn")
    p = add("roi-table", "a caption for every ROI of the bundle (the paper's interpretability analysis); "
                         "of every subject for a study (study.json or a folder of bundles)")
    p.add_argument("--stage", type=int, choices=(1, 2))
    p.add_argument("--scale", type=float, help="synthetic pattern scale (default: the bundle's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", metavar="CSV", help="also save the table as CSV")
    p = add("ask", "answer a question about a test trial from its brain pattern and its true image tokens",
            path_required=True)
    p.add_argument("--trial", required=True, metavar="ID", help="trial id (as in test/trials.json)")
    p.add_argument("question", metavar="QUESTION")
    p.add_argument("--stage", type=int, choices=(1, 2), help="stage of the brain model (default: the last one)")
    p.add_argument("--from", dest="source", choices=("brain", "image", "both"), default="both",
                   help="answer from the brain pattern, the true image tokens (the upper bound), or both")
    p.add_argument("--device", default="auto")
    p = add("score", "caption metrics for predictions against references", bundle=False)
    p.add_argument("--pred", required=True, metavar="FILE", help="predictions, one caption per line")
    p.add_argument("--refs", required=True, metavar="FILE", help="references: JSON list of lists of captions")


def cmd_eval(args) -> int:
    from brainview.analysis.study import is_study
    from brainview.decoding.decoder import Decoder

    if is_study(args.path):
        from brainview.cli.study import eval_study

        return emit(args, *eval_study(args))
    bundle = open_bundle(args.path)
    stage = stage_name(bundle, args.stage)
    if args.repeats is not None and args.repeats < 1:
        raise UserError("--repeats must be at least 1")
    decoder = Decoder.load(bundle, device=args.device, load_language_models=not args.no_captions)
    if not args.no_captions and bundle.vlm.get("captioner") and not decoder.can_caption:
        raise UserError(f"cannot caption with the bundle's captioner ({decoder.captions_missing}); "
                        "pass --no-captions for retrieval only")
    result = evaluate_bundle(bundle, decoder, stage, args.repeats, args.seed, captions=not args.no_captions,
                             fmri_repeats=args.fmri_repeats)
    lines = [f"{bundle.name}: {stage} on {bundle.n_trials} test trials, {repeats_label(args.fmri_repeats)}"]
    lines += _figure_lines(result)
    if "each_window" in result:
        lines += _difference_lines(result["versus_all"])
        lines += ["", f"the mean over every repeat taken in turn ({result['each_window']['windows']} windows; "
                      "intervals: the windows' mean)"]
        lines += _figure_lines({**result["each_window"], "missing": result["missing"]})
        lines += _difference_lines(result["each_window"]["versus_all"])
    lines += ["", "questions (exact match; brain [95% interval], true image tokens, chance)"]
    lines += [f"  {kind:<18} {q['accuracy']:.3f}  [{q['ci95'][0]:.3f}, {q['ci95'][1]:.3f}]  image {q['image_accuracy']:.3f}"
              f"  chance {q['chance']:.3f}  n {q['n']}" for kind, q in result["qa"].items()]
    if not result["qa"]:
        lines.append(f"  missing: {result['missing'].get('qa', '')}")
    return emit(args, result, lines)


def _difference_lines(differences: dict) -> list[str]:
    lines = ["", "less the mean of all repeats, trial by trial (retrieval: top-1 among all trials) [95% interval]"]
    return lines + [f"  {name:<18} {d['difference']:+.3f}  [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
                    f"  (mean of all: {d['mean_of_all']:.3f})" for name, d in differences.items()]


def _figure_lines(result: dict) -> list[str]:
    """Retrieval and captioning of one ``eval`` result as text, each with its interval (and chance)."""
    lines = ["", "retrieval (top-1)"]
    for direction, r in result["retrieval"].items():
        lines.append(f"  {direction:<18} {r['top1']:.3f}  [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
                     f"  {r['pool']}-way (chance {1 / r['pool']:.3f})" + (f", {r['repeats']} repeats" if 'repeats' in r else ""))
    lines += ["", "captioning (mean [95% interval], chance: captions against other trials' references)"]
    for name, value in result["captioning"].items():
        if value is None:
            lines.append(f"  {name:<18} missing: {result['missing'].get(name, '')}")
            continue
        spread = result.get("caption_intervals", {}).get(name)
        lines.append(f"  {name:<18} {value:.3f}" + (f"  [{spread['ci95'][0]:.3f}, {spread['ci95'][1]:.3f}]"
                                                    f"  chance {spread['chance']:.3f}" if spread else ""))
    return lines


def cmd_ask(args) -> int:
    from brainview.decoding.decoder import Decoder

    bundle = open_bundle(args.path)
    stage = stage_name(bundle, args.stage)
    ids = [t["id"] for t in bundle.trials]
    if args.trial not in ids:
        raise UserError(f"no trial {args.trial!r} in {bundle.path}; trial ids run {ids[0]} … {ids[-1]}")
    if not args.question.strip():
        raise UserError("the question is empty")
    trial = ids.index(args.trial)
    decoder = Decoder.load(bundle, device=args.device)
    if not decoder.can_caption:
        raise UserError(f"cannot answer questions: {decoder.captions_missing}")
    sources = {"brain": decoder.tokens_for_trials([trial], stage), "image": bundle.image_embeddings[[trial]]}
    wanted = ("brain", "image") if args.source == "both" else (args.source,)
    answers = {s: decoder.answers(sources[s], [args.question])[0] for s in wanted}
    payload = {"trial": args.trial, "question": args.question, "stage": int(stage[-1]),
               "answer": answers.get("brain"), "image_answer": answers.get("image")}
    lines = [f"{args.trial} ({stage}): {args.question}"]
    lines += [f"  from the {'brain pattern' if s == 'brain' else 'true image tokens'}: {a}" for s, a in answers.items()]
    return emit(args, payload, lines)


def cmd_roi_table(args) -> int:
    from brainview.analysis.study import is_study
    from brainview.decoding.decoder import Decoder

    if is_study(args.path):
        from brainview.cli.study import roi_table_study

        return emit(args, *roi_table_study(args))
    bundle = open_bundle(args.path)
    stage = stage_name(bundle, args.stage)
    if not bundle.rois:
        raise UserError(f"{bundle.path} lists no ROIs in cortex/rois.json")
    decoder = Decoder.load(bundle, device=args.device)
    if not decoder.can_caption:
        raise UserError(f"cannot caption ROIs: {decoder.captions_missing}")
    from brainview.analysis.tables import roi_captions, roi_table

    names = list(bundle.rois)
    captions = roi_captions(bundle, decoder, stage, scale=args.scale)
    rois = {n: {"caption": c, "n_voxels": int(bundle.roi_voxels(n).size), "group": bundle.rois[n]["group"]}
            for n, c in captions.items()}
    if args.out:
        write_table(args.out, roi_table(bundle, {stage: captions}))
    width = max(len(n) for n in names)
    lines = [f"{bundle.name}: {stage}, synthetic ROI patterns (scale {args.scale or bundle.synthetic_scale:g})", ""]
    lines += [f"  {n:<{width}}  {r['n_voxels']:>6} voxels  {r['caption']}" for n, r in rois.items()]
    return emit(args, {"stage": int(stage[-1]), "rois": rois}, lines)


def cmd_score(args) -> int:
    predictions = read_text(args.pred, "predictions").splitlines()
    while predictions and not predictions[-1].strip():
        predictions.pop()
    try:
        references = json.loads(read_text(args.refs, "references"))
    except json.JSONDecodeError as exc:
        raise UserError(f"references file {args.refs} is not valid JSON: {exc}") from None
    if not (isinstance(references, list) and all(
            isinstance(r, list) and r and all(isinstance(s, str) for s in r) for r in references)):
        raise UserError(f"references file {args.refs} must be a JSON list of non-empty lists of strings")
    if len(predictions) != len(references):
        raise UserError(f"{len(predictions)} predictions in {args.pred} but {len(references)} reference lists in {args.refs}")
    if not predictions:
        raise UserError(f"{args.pred} holds no predictions")
    from brainview.decoding.metrics import caption_metrics

    report = caption_metrics(predictions, references)
    lines = [f"{len(predictions)} captions"]
    lines += [f"  {k:<10} " + (f"{v:.4f}" if v is not None else f"missing: {report.missing.get(k, '')}")
              for k, v in report.means.items()]
    return emit(args, {"n": len(predictions), "metrics": report.means, "missing": report.missing}, lines)


EVALUATION_COMMANDS = {"eval": cmd_eval, "ask": cmd_ask, "roi-table": cmd_roi_table, "score": cmd_score}
