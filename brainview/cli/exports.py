"""The commands that write files for papers and spreadsheets: ``table`` (CSV of the trials, the ROIs or
one trial's retrievals; of a study, its subjects side by side) and ``figure`` (the cortex or the trial panel,
PNG/SVG/PDF at any size).
:func:`add_export_commands` adds their parsers, :data:`EXPORT_COMMANDS` maps them.
"""

from __future__ import annotations

import os
import sys

from brainview.analysis.evaluation import stage_name
from brainview.cli.output import add_cpu_precision, open_bundle, trial_index, write_table
from brainview.errors import UserError
from brainview.state.headless import headless_session

FIGURE_BASE = (1600, 1000)  # the default figure size, and what --scale multiplies


def add_export_commands(add) -> None:
    """Register ``table`` and ``figure`` with the ``add(name, help, ...)`` of :func:`brainview.cli.main.build_parser`."""
    p = add("table", "save a table as CSV: every test trial (default), the ROIs, or one trial's retrievals; of a "
                     "study, its subjects side by side (Table 3: top-1, METEOR, mean ± sd)", json_flag=False)
    p.add_argument("--out", required=True, metavar="CSV")
    p.add_argument("--what", choices=("trials", "rois", "retrieval", "subjects"),
                   help="trials (a bundle's default), rois, retrieval, or subjects (a study's, and its default)")
    p.add_argument("--trial", metavar="ID", help="the trial whose retrievals to save (default: the first)")
    p.add_argument("--stage", type=int, choices=(1, 2), help="stage of the ROI captions and retrievals")
    p.add_argument("--k", type=int, default=10, help="retrievals per kind (default 10)")
    p.add_argument("--no-captions", action="store_true", help="ids, references and ranks only (fast)")
    p.add_argument("--device", default="auto")
    add_cpu_precision(p)
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


def cmd_table(args) -> int:
    from brainview.analysis.study import is_study
    from brainview.analysis.tables import retrieval_table, roi_captions, roi_table, trial_table
    from brainview.state.session import finish

    if args.k < 1:
        raise UserError("--k must be at least 1")
    if is_study(args.path):
        from brainview.cli.study import subjects_table_study

        if args.what not in (None, "subjects"):
            raise UserError(f"a study's table is --what subjects; --what {args.what} is one bundle's: "
                            "pass a subject's bundle")
        write_table(args.out, subjects_table_study(args))
        print(args.out)
        return 0
    if args.what == "subjects":
        raise UserError(f"--what subjects needs a study (study.json or a folder of bundles), not {args.path}")
    args.what = args.what or "trials"
    session = headless_session(args.path, args.device, captions=not args.no_captions,
                               cpu_precision=args.cpu_precision)
    bundle = session.bundle
    stage = stage_name(bundle, args.stage)
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
    write_table(args.out, table)
    print(args.out)
    return 0


def cmd_figure(args) -> int:
    from brainview.analysis.figures import check_output, figure_size

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


EXPORT_COMMANDS = {"table": cmd_table, "figure": cmd_figure}
