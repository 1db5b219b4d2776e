"""``brainview search | classify | localize``: the language queries of :mod:`brainview.decoding.language` headless.

Registered by :mod:`brainview.cli` (same conventions: ``--json`` prints one object, a user mistake
is one line on stderr and exit status 2). Nothing heavy is imported until a command runs, so the
parser stays as fast as the app's start needs; option defaults left at None mean the core's.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from brainview.analysis.caption_files import read_text
from brainview.cli.output import add_cpu_precision, check_output_path, emit
from brainview.errors import UserError

ENSEMBLE_HELP = "a phrase, or a prompt ensemble NAME=PROMPT1;PROMPT2 (embeddings averaged and renormalized)"


def add_language_commands(add) -> None:
    """Add the three commands with ``add(name, help)`` of :func:`brainview.cli.build_parser`."""
    p = add("search", "rank the test trials by how well their brain pattern matches a phrase (stage 2)",
            path_required=True)
    p.add_argument("phrase", metavar="PHRASE", help=ENSEMBLE_HELP)
    p.add_argument("--stage", type=int, choices=(1, 2), default=2, help="only stage 2 has a text space")
    p.add_argument("--top", type=int, default=10, metavar="N", help="trials to list (default 10)")
    p.add_argument("--device", default="auto")
    p = add("classify", "zero-shot labels for every test trial from its brain pattern, with accuracy")
    p.add_argument("--labels", required=True, help='"a,b,c", or @FILE with one label per line; '
                                                   'a label may carry its prompts: NAME=PROMPT1;PROMPT2')
    p.add_argument("--template", help='prompt template with {} for the label (default: CLIP\'s "a photo of a {}")')
    p.add_argument("--truth", metavar="FIELD", help="dotted path of the true label in test/trials.json, "
                                                    "e.g. scene.category")
    p.add_argument("--top", type=int, default=5, metavar="K", help="labels listed per trial (default 5)")
    p.add_argument("--csv", metavar="FILE", help="write the brain's confusion matrix as CSV (needs --truth)")
    p.add_argument("--device", default="auto")
    p = add("localize", "where on the cortex the decoder reads a phrase from: concept map, ROIs, lesion check",
            path_required=True)
    p.add_argument("phrase", metavar="PHRASE", help=ENSEMBLE_HELP)
    p.add_argument("--trial", metavar="ID", help="gradient × input on this trial (default: the trial-independent "
                                                 "covariance map)")
    p.add_argument("--out", metavar="MAP", help="write the map: .npy per voxel, or .func.gii per vertex "
                                                "(one file per hemisphere, NAME.lh.func.gii and NAME.rh.func.gii)")
    p.add_argument("--versus", metavar="PHRASES", help='alternatives, "P1,P2" or @FILE (each may be NAME=PROMPT1;PROMPT2): map '
                                                      "the phrase's zero-shot probability against them instead of its score")
    p.add_argument("--lesion", type=float, metavar="PERCENT",
                   help="share of voxels the lesion check silences (default 5)")
    p.add_argument("--no-captions", action="store_true", help="skip the captions of the lesion check")
    p.add_argument("--device", default="auto")
    add_cpu_precision(p)


def _bundle(args):
    """The bundle, refused at once (before any model loads) when it cannot answer language queries."""
    from brainview.bundle import open_bundle
    from brainview.decoding.language import unavailable_reason

    bundle = open_bundle(args.path)
    reason = unavailable_reason(bundle)
    if reason:
        raise UserError(reason)
    return bundle


def _probe(bundle, device: str):
    from transformers.utils import logging

    from brainview.decoding.language import LanguageProbe

    logging.disable_progress_bar()  # one line per error on stderr, not a loading bar
    return LanguageProbe.load(bundle, device)


def _unknown_lines(probe, unknown: dict) -> list[str]:
    """The vocabulary warning as text lines (none when every word is known)."""
    warning = probe.vocabulary_warning(unknown)
    return [f"  warning: {warning}"] if warning else []


def cmd_search(args) -> int:
    if args.stage != 2:
        raise UserError("phrase search needs stage 2: only its projection maps brain patterns into the text space")
    from brainview.decoding.language import parse_query

    if args.top < 1:
        raise UserError("--top must be at least 1")
    query = parse_query(args.phrase)
    probe = _probe(_bundle(args), args.device)
    result = probe.search(query)
    trials = probe.bundle.trials
    top = result.order[:args.top]
    rows = [{"id": trials[i]["id"], "index": int(i), "score": float(result.brain[i]),
             "image_score": float(result.image[i])} for i in top]
    agreement = {"spearman": result.agreement, "top_overlap": result.overlap(args.top)}
    lines = [f"{probe.bundle.name}: {result.phrase!r}, {probe.n_trials} test trials, stage 2, best first",
             *_prompt_lines(query), *_unknown_lines(probe, result.unknown),
             f"  brain vs true image tokens: Spearman {agreement['spearman']:.3f}, "
             f"top-{args.top} overlap {agreement['top_overlap']:.2f}", "",
             f"  {'trial':<14} {'brain':>7} {'image':>7}  reference caption"]
    lines += [f"  {r['id']:<14} {r['score']:7.3f} {r['image_score']:7.3f}  {probe.bundle.captions[r['index']][0]}"
              for r in rows]
    return emit(args, {"phrase": result.phrase, "prompts": list(query.prompts), "trials": rows,
                        "agreement": agreement, "unknown_words": _unknown_json(result.unknown)}, lines)


def _prompt_lines(query) -> list[str]:
    return [f"  prompts averaged: {'; '.join(query.prompts)}"] if query.prompts != (query.name,) else []


def _unknown_json(unknown: dict) -> dict:
    return {word: list(pieces) for word, pieces in unknown.items()}


def _label_items(spec: str, what: str = "labels") -> list[str]:
    """Comma-separated items, or the lines of @FILE (read as the user's ``what`` file)."""
    if spec.startswith("@"):
        return read_text(spec[1:], what).splitlines()
    return spec.split(",")


def _confusion_csv(names: list[str], confusion) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["truth \\ predicted", *names])
    for name, row in zip(names, confusion):
        writer.writerow([name, *(int(v) for v in row)])
    return buffer.getvalue().encode("utf-8")


def _accuracy_line(what: str, accuracy) -> str:
    return (f"  {what:<18} top-1 {accuracy.top1:.3f} [{accuracy.ci95[0]:.3f}, {accuracy.ci95[1]:.3f}]  "
            f"top-5 {accuracy.top5:.3f} [{accuracy.top5_ci95[0]:.3f}, {accuracy.top5_ci95[1]:.3f}]  "
            f"chance {accuracy.chance:.3f} / {accuracy.chance_top5:.3f}  n={accuracy.n}")


def cmd_classify(args) -> int:
    from brainview.cortex.roi_io import write_atomic
    from brainview.decoding.language import DEFAULT_TEMPLATE, parse_labels, truth_indices

    if args.top < 1:
        raise UserError("--top must be at least 1")
    if args.csv and not args.truth:
        raise UserError("--csv writes the confusion matrix, which needs a truth field (--truth)")
    if args.csv:
        check_output_path(args.csv)  # before the model work, not after it
    labels = parse_labels(_label_items(args.labels), args.template or DEFAULT_TEMPLATE)
    bundle = _bundle(args)
    if args.truth:
        truth_indices(bundle.trials, labels, args.truth)  # a wrong field fails before the model loads
    probe = _probe(bundle, args.device)
    result = probe.classify(labels, args.truth)
    names = result.names
    trials = probe.bundle.trials
    predictions = [{"id": trials[i]["id"], "top": result.top(i, args.top)} for i in range(probe.n_trials)]
    accuracy = result.accuracy.to_json() if result.accuracy else None
    image_accuracy = result.image_accuracy.to_json() if result.image_accuracy else None
    confusion = result.accuracy.confusion.tolist() if result.accuracy else None
    lines = [f"{probe.bundle.name}: {len(names)} labels ({', '.join(names)}), {probe.n_trials} test trials, stage 2"]
    lines += [line.replace("warning:", f"warning (label {name!r}):") for name, unknown in result.unknown.items()
              for line in _unknown_lines(probe, unknown)]
    if result.accuracy:
        lines += [f"truth: {args.truth}", _accuracy_line("brain", result.accuracy),
                  _accuracy_line("true image tokens", result.image_accuracy), "",
                  "confusion (brain; rows truth, columns top-1 prediction)"]
        width = max(6, *(len(n) for n in names))
        lines.append(" " * (width + 2) + " ".join(f"{n[:6]:>6}" for n in names))
        lines += [f"  {n:<{width}}" + " ".join(f"{v:6d}" for v in row) for n, row in zip(names, result.accuracy.confusion)]
    else:
        lines += [f"  {p['id']:<14} {', '.join(p['top'])}" for p in predictions[:20]]
        if len(predictions) > 20:
            lines.append(f"  … {len(predictions) - 20} more (--json lists all)")
    if args.csv:
        write_atomic(args.csv, _confusion_csv(names, result.accuracy.confusion))
        lines.append(f"confusion matrix written to {args.csv}")
    return emit(args, {"labels": names, "predictions": predictions, "accuracy": accuracy,
                        "image_accuracy": image_accuracy, "confusion": confusion,
                        "unknown_words": {name: _unknown_json(u) for name, u in result.unknown.items()}}, lines)


def _trial_index(bundle, trial_id: str) -> int:
    ids = [t["id"] for t in bundle.trials]
    if trial_id not in ids:
        raise UserError(f"no test trial has the id {trial_id!r}; ids look like {ids[0]!r}")
    return ids.index(trial_id)


def write_map(path: str, bundle, values) -> list[Path]:
    """A voxel map as ``.npy``, or per vertex as GIFTI ``.func.gii`` (one per hemisphere); atomic writes."""
    from brainview.cortex.map_io import export_gifti_map, save_voxel_map
    from brainview.cortex.surface import Cortex

    if path.endswith(".npy"):
        return [save_voxel_map(path, values)]
    if path.endswith(".func.gii"):
        return export_gifti_map(path, Cortex.from_bundle(bundle), values)
    raise UserError(f"--out {path}: the map is written as .npy (per voxel) or .func.gii (per vertex)")


def cmd_localize(args) -> int:
    from brainview.decoding.language import DEFAULT_LESION, parse_query

    phrase = parse_query(args.phrase)
    percent = DEFAULT_LESION * 100 if args.lesion is None else args.lesion
    if not 0 < percent <= 100:
        raise UserError(f"--lesion is a percentage in (0, 100], not {percent:g}")
    if args.out and not args.out.endswith((".npy", ".func.gii")):
        raise UserError(f"--out {args.out}: the map is written as .npy (per voxel) or .func.gii (per vertex)")
    if args.out:
        check_output_path(args.out)  # before the model work, not after it
    bundle = _bundle(args)
    trial = _trial_index(bundle, args.trial) if args.trial else None
    versus = [parse_query(v) for v in _label_items(args.versus, "--versus phrases") if v.strip()] if args.versus else []
    probe = _probe(bundle, args.device)
    concept = probe.concept_map(phrase, trial, versus)
    rois = concept.roi_means({name: spec["voxels"] for name, spec in bundle.rois.items()})
    captioner, missing = None, "captions were not requested (--no-captions)"
    if not args.no_captions:
        from brainview.decoding.decoder import Decoder

        decoder = Decoder.load(bundle, device=args.device, cpu_precision=args.cpu_precision)
        captioner = decoder.captions if decoder.can_caption else None
        missing = None if captioner else decoder.captions_missing
    check = probe.lesion(concept, percent / 100, captioner=captioner, captions_missing=missing)
    written = write_map(args.out, bundle, concept.values) if args.out else []
    caption_trial = bundle.trials[check.caption_trial]["id"]
    lesion = {"top_fraction": check.top_fraction, "score_drop": check.score_drop,
              "random_score_drop": check.random_score_drop, "caption_before": check.caption_before,
              "caption_after": check.caption_after, "score_before": check.score_before,
              "random_score_drop_sd": check.random_score_drop_sd, "random_draws": int(check.random_after.size),
              "n_voxels": check.n_voxels, "n_trials": int(check.trials.size), "caption_trial": caption_trial,
              "caption_random": check.caption_random, "captions_missing": check.captions_missing}
    payload = {"phrase": concept.phrase, "trial": bundle.trials[trial]["id"] if trial is not None else None,
               "map": concept.kind, "versus": list(concept.versus), "measure": check.measure, "rois": rois,
               "lesion": lesion, "written": [str(p) for p in written],
               "prompts": {q.name: list(q.prompts) for q in concept.queries},
               "unknown_words": _unknown_json(concept.unknown)}
    where = f"trial {payload['trial']} (gradient × input)" if trial is not None else \
        "all test trials (covariance of each voxel with the score, Haufe et al. 2014)"
    lines = [f"{bundle.name}: {concept.phrase!r}, map over {where}", *_prompt_lines(concept.queries[0])]
    if concept.versus:
        lines.append(f"  of its zero-shot probability against {', '.join(map(repr, concept.versus))}")
    lines += _unknown_lines(probe, concept.unknown)
    lines += ["", "ROI means, best first"]
    lines += [f"  {name:<14} {value:+.4f}" for name, value in rois.items()]
    on = (f"trial {caption_trial}" if trial is not None
          else f"the {check.trials.size} best-matching trials")
    lines += ["", f"lesion of the top {check.top_fraction * 100:g}% ({check.n_voxels} voxels), score on {on}",
              f"  {check.measure} {check.score_before:.4f} → drop {check.score_drop:+.4f}; "
              f"random voxels drop {check.random_score_drop:+.4f} ± {check.random_score_drop_sd:.4f} "
              f"({check.random_after.size} draws)"]
    if check.caption_before is not None:
        lines += [f"  caption of {caption_trial}: {check.caption_before!r}", f"    lesioned:  {check.caption_after!r}",
                  f"    random:    {check.caption_random!r}"]
    else:
        lines.append(f"  captions: {check.captions_missing}")
    lines += [f"map written to {p}" for p in written]
    return emit(args, payload, lines)


LANGUAGE_COMMANDS = {"search": cmd_search, "classify": cmd_classify, "localize": cmd_localize}
