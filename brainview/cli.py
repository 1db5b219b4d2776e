"""The ``brainview`` command: the app with no arguments, headless commands otherwise (DESIGN.md §5).

Every user mistake ends with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from brainview.errors import UserError
from brainview.bundle_cli import BUNDLE_COMMANDS, add_bundle_commands
from brainview.cli_output import emit, open_bundle, read_text, terminal_text
from brainview.language_cli import LANGUAGE_COMMANDS, add_language_commands
from brainview.paths import demo_bundle_path

EXIT_USER_ERROR = 2
EVAL_METRICS = ("meteor", "rouge1", "rougeL", "sentence", "clip_b", "clip_l")
FIGURE_BASE = (1600, 1000)  # the default figure size, and what --scale multiplies


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brainview", description="Explore fMRI-to-language decoding bundles. "
                                       "With no command, opens the app on the embedded demo bundle.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str, bundle: bool = True, json_flag: bool = True,
            path_required: bool = False) -> argparse.ArgumentParser:
        """A subcommand; its PATH may be left out (the demo) unless another positional follows it,
        which argparse would otherwise take for PATH."""
        p = sub.add_parser(name, help=help_text, description=help_text)
        if bundle and path_required:
            p.add_argument("path", metavar="PATH", help="bundle directory")
        elif bundle:
            p.add_argument("path", metavar="PATH", nargs="?", help="bundle directory (default: the embedded demo)")
        if json_flag:
            p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
        return p

    p = add("open", "open the app on a bundle, a study (study.json) or a session file (SESSION.json)", json_flag=False)
    p.add_argument("--device", help="auto, cpu or cuda (default: the one used last)")
    add_bundle_commands(add)
    p = add("eval", "retrieval and caption metrics on the bundle's test set (a study: every subject, and the mean)")
    p.add_argument("--stage", type=int, choices=(1, 2), help="stage to evaluate (default: the last one)")
    p.add_argument("--repeats", type=int, help="repeats for every direction (default: 30 image, 50 text)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-captions", action="store_true", help="retrieval only")
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
    p = add("table", "save a table as CSV: every test trial (default), the ROIs, or one trial's retrievals",
            json_flag=False)
    p.add_argument("--out", required=True, metavar="CSV")
    p.add_argument("--what", choices=("trials", "rois", "retrieval"), default="trials")
    p.add_argument("--trial", metavar="ID", help="the trial whose retrievals to save (default: the first)")
    p.add_argument("--stage", type=int, choices=(1, 2), help="stage of the ROI captions and retrievals")
    p.add_argument("--k", type=int, default=10, help="retrievals per kind (default 10)")
    p.add_argument("--no-captions", action="store_true", help="ids, references and ranks only (fast)")
    p.add_argument("--device", default="auto")
    p = add("figure", "a publication figure of the cortex (or the trial panel) at any resolution", json_flag=False)
    p.add_argument("--out", required=True, metavar="FILE", help="FILE.png, FILE.svg or FILE.pdf")
    p.add_argument("--trial", metavar="ID", help="trial id (default: the first trial)")
    p.add_argument("--rois", default="", metavar="A,B", help="ROIs to select and outline (default: outline all)")
    p.add_argument("--surface", default="inflated", help="inflated, pial or flat (when the bundle has a flatmap)")
    p.add_argument("--view", default="lateral", help="lateral, medial, ventral or posterior (ignored on flat)")
    p.add_argument("--overlay", default="trial", metavar="KIND",
                   help="trial (the trial's fMRI pattern) or synthetic (the --rois pattern)")
    p.add_argument("--width", type=int, metavar="PX")
    p.add_argument("--height", type=int, metavar="PX")
    p.add_argument("--scale", type=float, metavar="N", help=f"N times {FIGURE_BASE[0]}x{FIGURE_BASE[1]}")
    p.add_argument("--transparent", action="store_true")
    p.add_argument("--title", default="")
    p.add_argument("--what", choices=("cortex", "trial"), default="cortex",
                   help="cortex (with colour bar and legend) or the trial panel (stimulus, captions, retrievals)")
    p.add_argument("--device", default="cpu")
    p = add("install-desktop", "install the desktop entry, icons and AppStream metainfo for the current user",
            bundle=False, json_flag=False)
    p.add_argument("--uninstall", action="store_true", help="remove them again")
    p.add_argument("--prefix", metavar="DIR", help="data folder (default: $XDG_DATA_HOME or ~/.local/share)")
    p = add("screenshot", "render the main window on a bundle (or a study) to a PNG and exit", json_flag=False)
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--size", default="1600x1000", help="window size WIDTHxHEIGHT")
    add_language_commands(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "path", "") is None:
        args.path = str(demo_bundle_path())
    try:
        if args.command is None:
            return _run_app(None, None)
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"brainview: error: {terminal_text(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("brainview: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``brainview info | head``): stop quietly, as other command-line tools do
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141


def _stage_name(bundle, stage: int | None) -> str:
    if stage is None:
        return bundle.stages[-1]
    name = f"stage{stage}"
    if name not in bundle.stages:
        raise UserError(f"the bundle has no {name}; it has {', '.join(bundle.stages)}")
    return name


def evaluate_bundle(bundle, decoder, stage: str, repeats: int | None, seed: int, captions: bool = True) -> dict:
    """Retrieval and caption metrics of one stage on the test set (DESIGN.md §4)."""
    from brainview.decoding.retrieval import evaluate_stage

    tokens, retrieval = evaluate_stage(decoder.model, stage, bundle.fmri, bundle.image_embeddings,
                                       bundle.text_embeddings, bundle.text_index, repeats=repeats, seed=seed)
    captioning: dict[str, float | None] = dict.fromkeys(EVAL_METRICS)
    missing: dict[str, str] = {}
    if not captions:
        missing = dict.fromkeys(EVAL_METRICS, "captions were not requested (--no-captions)")
    elif not decoder.can_caption:
        missing = dict.fromkeys(EVAL_METRICS, f"no captions: {decoder.captions_missing}")
    else:
        from brainview.decoding.metrics import caption_metrics

        predictions = decoder.captions(tokens)
        report = caption_metrics(predictions, bundle.captions, metrics=list(EVAL_METRICS))
        captioning.update({k: report.means.get(k) for k in EVAL_METRICS})
        missing = {k: v for k, v in report.missing.items() if k in EVAL_METRICS}
    qa: dict = {}
    if bundle.questions is None:
        missing["qa"] = "the bundle has no question-answer set (test/questions.json)"
    elif captions and decoder.can_caption:
        from brainview.decoding.questions import evaluate_questions

        qa = evaluate_questions(decoder, bundle.questions, tokens, bundle.image_embeddings)
    else:
        missing["qa"] = missing.get("meteor", "no captioner")
    return {"stage": int(stage[-1]), "retrieval": retrieval, "captioning": captioning, "qa": qa, "missing": missing}


def cmd_eval(args) -> int:
    from brainview.decoding.decoder import Decoder
    from brainview.study import is_study

    if is_study(args.path):
        from brainview.study_cli import eval_study

        return emit(args, *eval_study(args))
    bundle = open_bundle(args.path)
    stage = _stage_name(bundle, args.stage)
    if args.repeats is not None and args.repeats < 1:
        raise UserError("--repeats must be at least 1")
    decoder = Decoder.load(bundle, device=args.device, load_language_models=not args.no_captions)
    if not args.no_captions and bundle.vlm.get("captioner") and not decoder.can_caption:
        raise UserError(f"cannot caption with the bundle's captioner ({decoder.captions_missing}); "
                        "pass --no-captions for retrieval only")
    result = evaluate_bundle(bundle, decoder, stage, args.repeats, args.seed, captions=not args.no_captions)
    lines = [f"{bundle.name}: {stage} on {bundle.n_trials} test trials", "", "retrieval (top-1)"]
    for direction, r in result["retrieval"].items():
        lines.append(f"  {direction:<18} {r['top1']:.3f}  [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
                     f"  {r['pool']}-way, {r['repeats']} repeats")
    lines += ["", "captioning"]
    for name, value in result["captioning"].items():
        lines.append(f"  {name:<18} " + (f"{value:.3f}" if value is not None else f"missing: {result['missing'].get(name, '')}"))
    lines += ["", "questions (exact match; brain [95% interval], true image tokens, chance)"]
    lines += [f"  {kind:<18} {q['accuracy']:.3f}  [{q['ci95'][0]:.3f}, {q['ci95'][1]:.3f}]  image {q['image_accuracy']:.3f}"
              f"  chance {q['chance']:.3f}  n {q['n']}" for kind, q in result["qa"].items()]
    if not result["qa"]:
        lines.append(f"  missing: {result['missing'].get('qa', '')}")
    return emit(args, result, lines)


def cmd_ask(args) -> int:
    from brainview.decoding.decoder import Decoder

    bundle = open_bundle(args.path)
    stage = _stage_name(bundle, args.stage)
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
    from brainview.decoding.decoder import Decoder
    from brainview.study import is_study

    if is_study(args.path):
        from brainview.study_cli import roi_table_study

        return emit(args, *roi_table_study(args))
    bundle = open_bundle(args.path)
    stage = _stage_name(bundle, args.stage)
    if not bundle.rois:
        raise UserError(f"{bundle.path} lists no ROIs in cortex/rois.json")
    decoder = Decoder.load(bundle, device=args.device)
    if not decoder.can_caption:
        raise UserError(f"cannot caption ROIs: {decoder.captions_missing}")
    from brainview.tables import roi_captions, roi_table

    names = list(bundle.rois)
    captions = roi_captions(bundle, decoder, stage, scale=args.scale)
    rois = {n: {"caption": c, "n_voxels": int(bundle.roi_voxels(n).size), "group": bundle.rois[n]["group"]}
            for n, c in captions.items()}
    if args.out:
        _write_table(args.out, roi_table(bundle, {stage: captions}))
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


def _write_table(path: str, table) -> None:
    from brainview.tables import write_csv

    if not path.lower().endswith(".csv"):
        raise UserError(f"--out must name a .csv file, got {path}")
    try:
        write_csv(path, table)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc}") from None


def trial_index(bundle, trial_id: str | None) -> int:
    """The index of a trial given by id (or by index when no trial has that id); the first when None."""
    if trial_id is None:
        return 0
    ids = [t["id"] for t in bundle.trials]
    if trial_id in ids:
        return ids.index(trial_id)
    if trial_id.isdigit() and int(trial_id) < len(ids):
        return int(trial_id)
    raise UserError(f"no trial {trial_id!r} in {bundle.path} (ids look like {ids[0]!r})")


def headless_session(path: str, device: str = "auto", captions: bool = True):
    """A :class:`~brainview.session.Session` on a bundle, without a window."""
    from brainview.session import Session, load

    session = Session()
    session.set_loaded(load(path, device=device, load_language_models=captions))
    return session


def cmd_table(args) -> int:
    from brainview.session import finish
    from brainview.tables import retrieval_table, roi_captions, roi_table, trial_table

    if args.k < 1:
        raise UserError("--k must be at least 1")
    session = headless_session(args.path, args.device, captions=not args.no_captions)
    bundle = session.bundle
    stage = _stage_name(bundle, args.stage)
    if args.what == "trials":
        if session.can_caption:
            session.set_caption_scores(finish(session.iter_caption_scores()))
            for metric, why in session.missing_scores.items():
                print(f"brainview: note: no {metric} column: {why}", file=sys.stderr)
        elif not args.no_captions:
            print(f"brainview: note: no captions: {session.captions_missing}", file=sys.stderr)
        table = trial_table(session)
    elif args.what == "rois":
        captions = {stage: roi_captions(bundle, session.decoder, stage)} if session.can_caption else {}
        table = roi_table(bundle, captions)
    else:
        trial = trial_index(bundle, args.trial)
        decoded = session.decoder.decode(session.decoder.tokens_for_trials([trial], stage)[0], stage, args.k,
                                         caption=False)
        table = retrieval_table(session, decoded, trial)
    _write_table(args.out, table)
    print(args.out)
    return 0


def _run_app(path: str | None, device: str | None) -> int:
    from brainview.qt.app import run_app

    return run_app(path, device=device)


def cmd_open(args) -> int:
    if not Path(args.path).exists():
        raise UserError(f"no bundle or session at {args.path}: the path does not exist")
    from brainview.session_file import is_session_file, load_session
    from brainview.study import is_study, load_study

    if is_study(args.path):
        study = load_study(args.path)  # a broken study is a user error before any window exists
        for subject in study.ids:
            study.bundle(subject)
    elif is_session_file(args.path):
        load_session(args.path)  # a broken session file is a user error before any window exists
    return _run_app(args.path, args.device)


def cmd_figure(args) -> int:
    from brainview.figures import check_output, figure_size

    size = figure_size(args.width, args.height, args.scale, FIGURE_BASE)
    check_output(args.out)
    bundle = open_bundle(args.path)  # a broken bundle is a user error before any window exists
    rois = tuple(name.strip() for name in args.rois.split(",") if name.strip())
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # headless: no display needed
    from brainview.qt.figure_export import figure

    figure(args.path, args.out, size=size, trial=trial_index(bundle, args.trial), rois=rois, surface=args.surface,
           view=args.view, overlay=args.overlay, transparent=args.transparent, what=args.what, title=args.title,
           device=args.device)
    print(args.out)
    return 0


def cmd_install_desktop(args) -> int:
    from brainview import desktop_install

    root = Path(args.prefix) if args.prefix else None
    try:
        files = desktop_install.uninstall(root) if args.uninstall else desktop_install.install(root)
    except OSError as exc:
        raise UserError(f"cannot {'remove' if args.uninstall else 'install'} the desktop files: {exc}") from None
    for path in files:
        print(path)
    return 0


def cmd_screenshot(args) -> int:
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise UserError(f"--size must look like 1600x1000, got {args.size!r}") from None
    from brainview.study import is_study, load_study

    if is_study(args.path):
        study = load_study(args.path)  # a broken study is a user error before any window exists
        for subject in study.ids:
            study.bundle(subject)
    else:
        open_bundle(args.path)  # a broken bundle is a user error before any window exists
    from brainview.qt.app import screenshot

    screenshot(args.path, args.out, size=(width, height))
    print(args.out)
    return 0


COMMANDS = {"open": cmd_open, **BUNDLE_COMMANDS, "eval": cmd_eval, "ask": cmd_ask, "roi-table": cmd_roi_table,
            "score": cmd_score, "screenshot": cmd_screenshot, "table": cmd_table, "figure": cmd_figure,
            "install-desktop": cmd_install_desktop, **LANGUAGE_COMMANDS}
