"""The commands that measure a bundle: ``eval`` (retrieval, captions, questions), ``ask`` (one question
about one trial), ``roi-table`` (a caption for every ROI: the paper's, on the image manifold, or from
the data) and ``roi-images`` (the test stimuli that drive a region). ``score`` and ``compare`` are in
:mod:`.benchmark`. :func:`add_evaluation_commands` adds their parsers, :data:`EVALUATION_COMMANDS` maps them.
"""

from __future__ import annotations

from brainview.analysis.evaluation import FMRI_REPEATS, evaluate_bundle, stage_name
from brainview.analysis.roi_methods import METHOD_LABELS, METHODS
from brainview.cli.output import add_cpu_precision, caption_progress, emit, open_bundle, repeats_label, write_table
from brainview.cli.regions import evaluation_lines, method_options, read_truth, region_voxels
from brainview.decoding.metric_tables import TABLES
from brainview.errors import UserError


def add_evaluation_commands(add) -> None:
    """Register ``eval``, ``roi-table`` and ``ask`` with the ``add(name, help, ...)`` of
    :func:`brainview.cli.main.build_parser`."""
    p = add("eval", "retrieval and caption metrics on the bundle's test set (a study: every subject, and the mean)")
    p.add_argument("--stage", type=int, choices=(1, 2), help="stage to evaluate (default: the last one)")
    p.add_argument("--repeats", type=int, help="repeats for every direction (default: 30 image, 50 text)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="auto")
    add_cpu_precision(p)
    p.add_argument("--no-captions", action="store_true", help="retrieval only")
    p.add_argument("--fmri-repeats", choices=FMRI_REPEATS, default="all",
                   help="decode each trial's first repeat (1), the mean of its first two (2), or the mean of all "
                        "(the default); 1 and 2 also report the mean over every repeat taken in turn")
    p.add_argument("--trials", type=int, metavar="N", help="caption and ask only N test trials drawn with --seed "
                                                           "(retrieval keeps every trial); stated in the result")
    p = add("roi-table", "a caption for every ROI of the bundle (the paper's interpretability analysis, or on the "
                         "natural-image manifold, or from the stimuli that drive it); of every subject for a study "
                         "(study.json or a folder of bundles)")
    p.add_argument("--stage", type=int, choices=(1, 2))
    p.add_argument("--method", choices=METHODS, default="paper",
                   help="paper: the synthetic pattern (voxels 1, tokens ×scale); manifold: the region's forward-model "
                        "direction projected on the test images' tokens; data: the test images the region responds "
                        "to most (default: paper)")
    p.add_argument("--scale", type=float, help="paper: synthetic pattern scale (default: the bundle's)")
    p.add_argument("--temperature", type=float, help="manifold: softmax temperature on cosines (default 0.02)")
    p.add_argument("--top", type=int, default=10, metavar="K",
                   help="manifold and data: images whose references give the words; data: images averaged (default 10)")
    p.add_argument("--evaluate", action="store_true",
                   help="also score every method, random captions (and --truth) by how well a caption predicts the "
                        "ROI's response on held-out test trials (needs the retrieval model)")
    p.add_argument("--truth", metavar="JSON", help="with --evaluate: a file {ROI: caption} of what each ROI is known to "
                                                   "prefer (the demo world's ground truth)")
    p.add_argument("--device", default="auto")
    add_cpu_precision(p)
    p.add_argument("--out", metavar="CSV", help="also save the table as CSV")
    p = add("ask", "answer a question about a test trial from its brain pattern and its true image tokens",
            path_required=True)
    p.add_argument("--trial", required=True, metavar="ID", help="trial id (as in test/trials.json)")
    p.add_argument("question", metavar="QUESTION")
    p.add_argument("--stage", type=int, choices=(1, 2), help="stage of the brain model (default: the last one)")
    p.add_argument("--from", dest="source", choices=("brain", "image", "both"), default="both",
                   help="answer from the brain pattern, the true image tokens (the upper bound), or both")
    p.add_argument("--device", default="auto")
    add_cpu_precision(p)
    p = add("roi-images", "the test stimuli that drive a region most (its mean response on the normalised fMRI), "
                          "with a permutation control of random voxel sets", path_required=True)
    p.add_argument("region", metavar="ROI", help="an ROI name, several as A,B, or an ROI file saved by the app "
                                                 "(.json, .label, .label.gii)")
    p.add_argument("--top", type=int, default=10, metavar="K", help="trials to list and test (default 10)")
    p.add_argument("--draws", type=int, default=200, metavar="N", help="random voxel sets of the control (default 200)")
    p.add_argument("--seed", type=int, default=0)


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
    decoder = Decoder.load(bundle, device=args.device, load_language_models=not args.no_captions,
                           cpu_precision=args.cpu_precision)
    if not args.no_captions and bundle.vlm.get("captioner") and not decoder.can_caption:
        raise UserError(f"cannot caption with the bundle's captioner ({decoder.captions_missing}); "
                        "pass --no-captions for retrieval only")
    if args.trials is not None and args.trials < 1:
        raise UserError("--trials must be at least 1")
    result = evaluate_bundle(bundle, decoder, stage, args.repeats, args.seed, captions=not args.no_captions,
                             fmri_repeats=args.fmri_repeats, trials=args.trials, progress=caption_progress())
    lines = [f"{bundle.name}: {stage} on {bundle.n_trials} test trials, {repeats_label(args.fmri_repeats)}"]
    lines += _figure_lines(result)
    if "each_window" in result:
        lines += _difference_lines(result["versus_all"])
        lines += ["", f"the mean over every repeat taken in turn ({result['each_window']['windows']} windows; "
                      "intervals: the windows' mean)"]
        lines += _figure_lines({**result["each_window"], "missing": result["missing"], "table": result["table"]})
        lines += _difference_lines(result["each_window"]["versus_all"])
    lines += ["", "questions (exact match; brain [95% interval], true image tokens, chance)"]
    lines += [f"  {kind:<18} {q['accuracy']:.3f}  [{q['ci95'][0]:.3f}, {q['ci95'][1]:.3f}]  image {q['image_accuracy']:.3f}"
              f"  chance {q['chance']:.3f}  n {q['n']}" for kind, q in result["qa"].items()]
    if not result["qa"]:
        lines.append(f"  missing: {result['missing'].get('qa', '')}")
    if "qa_questions" in result["missing"]:
        lines.append(f"  left out: {result['missing']['qa_questions']}")
    part = result.get("trials")
    if part:
        lines.append(f"\ncaptions and questions on {part['captioned']} of {part['of']} trials (seed {part['seed']})"
                     + (": PARTIAL, interrupted by Ctrl-C" if part["partial"] else ""))
    emit(args, result, lines)
    return 130 if part and part["partial"] else 0


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
    lines += ["", f"captioning: {TABLES[result['table']].title} (mean [95% interval], chance: captions against "
                  "other trials' references)"]
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
    decoder = Decoder.load(bundle, device=args.device, cpu_precision=args.cpu_precision)
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
    options = method_options(args, bundle)
    truth = read_truth(args.truth)
    decoder = Decoder.load(bundle, device=args.device, cpu_precision=args.cpu_precision)
    if not decoder.can_caption:
        raise UserError(f"cannot caption ROIs: {decoder.captions_missing}")
    from brainview.analysis.roi_methods import describe_regions
    from brainview.analysis.tables import roi_table

    regions = {n: bundle.roi_voxels(n) for n in bundle.rois}
    described = describe_regions(decoder, regions, stage, args.method, **options[args.method])
    rois = {n: {**d, "n_voxels": int(regions[n].size), "group": bundle.rois[n]["group"]} for n, d in described.items()}
    if args.out:
        write_table(args.out, roi_table(bundle, {stage: {n: r["caption"] for n, r in rois.items()}}))
    width = max(len(n) for n in rois)
    how = {"paper": f"scale {args.scale or bundle.synthetic_scale:g}",
           "manifold": f"temperature {next(iter(rois.values())).get('temperature', '')}, test images as the bank",
           "data": f"mean of the top {args.top} test images' tokens"}[args.method]
    lines = [f"{bundle.name}: {stage}, {METHOD_LABELS[args.method]} ({how})", ""]
    for n, r in rois.items():
        lines.append(f"  {n:<{width}}  {r['n_voxels']:>6} voxels  {r['caption']}")
        if r["words"]:
            lines.append(f"  {'':<{width}}  {'':>6}         words: " + ", ".join(
                f"{w['term']} ({w['count']})" for w in r["words"]))
    payload = {"stage": int(stage[-1]), "method": args.method, "rois": rois}
    if args.evaluate:
        from brainview.analysis.roi_evaluation import heldout_prediction
        from brainview.decoding.language import LanguageProbe

        probe = LanguageProbe.load(bundle, device=args.device)
        payload["evaluation"] = heldout_prediction(decoder, probe, regions, stage, truth=truth,
                                                   options=options)
        lines += evaluation_lines(payload["evaluation"])
    return emit(args, payload, lines)


def cmd_roi_images(args) -> int:
    from brainview.analysis.preferred import WORDS, preferred_stimuli
    from brainview.decoding.language import field_value

    bundle = open_bundle(args.path)
    voxels = region_voxels(bundle, args.region)
    if voxels.size == 0:
        raise UserError(f"{args.region} holds no voxels")
    if not 1 <= args.top <= bundle.n_trials:
        raise UserError(f"--top must lie in 1..{bundle.n_trials}")
    if args.draws < 1:
        raise UserError("--draws must be at least 1")
    found = preferred_stimuli(bundle, voxels, top=args.top, draws=args.draws, seed=args.seed)
    fields = [c.field for c in found.consistency if c.field != WORDS]
    trials = [{"rank": rank + 1, "trial": bundle.trials[t]["id"], "index": int(t),
               "response": round(float(found.response[t]), 4),
               "fields": {f: field_value(bundle.trials[t], f) for f in fields},
               "references": list(bundle.captions[t])} for rank, t in enumerate(found.trials)]
    payload = {"region": args.region, "n_voxels": found.n_voxels, "top": args.top, "trials": trials,
               "consistency": [c.as_dict() for c in found.consistency],
               "words": [{"term": w, "count": n} for w, n in found.words]}
    lines = [f"{bundle.name}: {args.region}, {found.n_voxels} voxels: the {args.top} test trials it responds to most",
             ""]
    lines += [f"  {r['rank']:>3}  {r['trial']:<14} {r['response']:+.2f}  {r['references'][0] if r['references'] else ''}"
              for r in trials]
    lines += ["", f"  what they share, against {args.draws} random sets of {found.n_voxels} voxels "
                  "(enrichment: share in the top less share overall)"]
    lines += [f"  {c['field']:<18} {c['value']!r:<18} {c['count']}/{c['top']} (overall {c['base_share']:.0%})  "
              f"enrichment {c['enrichment']:+.2f}, random {c['control_mean']:+.2f} "
              f"(95th percentile {c['control_p95']:+.2f}), p = {c['p_value']:.3f}" for c in payload["consistency"]]
    lines += ["", "  most frequent content words: " + ", ".join(f"{w} ({n})" for w, n in found.words)]
    return emit(args, payload, lines)


EVALUATION_COMMANDS = {"eval": cmd_eval, "ask": cmd_ask, "roi-table": cmd_roi_table, "roi-images": cmd_roi_images}
