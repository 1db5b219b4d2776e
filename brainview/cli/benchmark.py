"""The commands that put captions on the field's tables: ``score`` (any captions against references, in
BrainHub's or the MICCAI paper's table) and ``compare`` (other models' captions on a bundle's test
trials, with intervals and paired differences). :func:`add_benchmark_commands` adds their parsers.
"""

from __future__ import annotations

import json
from pathlib import Path

from brainview.analysis.caption_files import align, read_predictions, read_references
from brainview.cli.output import emit, open_bundle
from brainview.decoding.metric_tables import TABLES, metric_table
from brainview.errors import UserError


def add_benchmark_commands(add) -> None:
    """Register ``score`` and ``compare`` with the ``add(name, help, ...)`` of :func:`brainview.cli.main.build_parser`."""
    p = add("score", "caption metrics for predictions against references, in BrainHub's or the MICCAI paper's table",
            bundle=False)
    p.add_argument("--pred", required=True, metavar="FILE",
                   help="predictions: one caption per line, a JSON list, BrainHub's JSON dict or the MICCAI CSV")
    p.add_argument("--refs", metavar="FILE", help="references: a JSON list of lists or BrainHub's JSON dict "
                                                  "(default: the true_captions column of a CSV --pred)")
    p.add_argument("--table", choices=tuple(TABLES), help="print one table's columns (default: both tables)")
    p.add_argument("--per-caption", metavar="FILE", help="also write every caption's scores (.csv or .json)")
    p = add("compare", "other models' captions on the bundle's test trials: scores with 95%% intervals and "
                       "paired differences")
    p.add_argument("--captions", action="append", default=[], metavar="NAME=FILE",
                   help="a model's captions (repeat for each model), matched to trials by nsd_id, trial id or "
                        "BrainHub's position; added to those the bundle carries in models/")
    p.add_argument("--table", choices=tuple(TABLES), default="brainhub")
    p.add_argument("--refs", metavar="FILE", help="compare on a references file (e.g. BrainHub's) instead of a bundle")
    p.add_argument("--csv", metavar="FILE", help="also write the per-trial table as CSV")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap over trials")


def _write_per_caption(path: str, table: dict) -> None:
    from brainview.analysis.tables import to_csv
    from brainview.cortex.roi_io import write_atomic

    if path.lower().endswith(".json"):
        data = json.dumps(table, indent=1)
    elif path.lower().endswith(".csv"):
        data = to_csv(table)
    else:
        raise UserError(f"--per-caption must name a .csv or .json file, got {path}")
    try:
        write_atomic(path, data.encode("utf-8"))
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc}") from None


def cmd_score(args) -> int:
    predictions = read_predictions(args.pred)
    if args.refs is None and Path(args.pred).suffix.lower() not in (".csv", ".json"):
        raise UserError("--refs is needed unless --pred is a CSV or JSON file that carries the references")
    references = read_references(args.refs or args.pred)
    keys, captions, refs = align(predictions, references)
    from brainview.decoding.metrics import caption_metrics

    tables = [metric_table(args.table)] if args.table else list(TABLES.values())
    wanted = list(dict.fromkeys(m for t in tables for m in t.metrics))
    report = caption_metrics(captions, refs, wanted)
    lines = [f"{len(captions)} captions ({args.pred} against {args.refs or args.pred}, matched by {references.kind})"]
    payload_tables = {}
    for table in tables:
        lines += ["", table.title]
        lines += [f"  {label:<10} " + (table.text(report.means[m]) if report.means[m] is not None
                                       else f"missing: {report.missing.get(m, '')}") for label, m in table.columns]
        payload_tables[table.name] = {
            "title": table.title, "scale": table.scale,
            "columns": {label: (None if report.means[m] is None else report.means[m] * table.scale)
                        for label, m in table.columns}}
    if args.per_caption:
        per = {"key": keys, "caption": captions, **{m: [float(x) for x in v] for m, v in report.per_caption.items()}}
        _write_per_caption(args.per_caption, per)
        lines += ["", f"per-caption scores: {args.per_caption}"]
    return emit(args, {"n": len(captions), "tables": payload_tables, "metrics": report.means,
                       "missing": report.missing}, lines)


def cmd_compare(args) -> int:
    from brainview.analysis.model_captions import carried_specs, load_model_captions
    from brainview.analysis.model_comparison import compare_models

    table = metric_table(args.table)
    specs = list(args.captions)
    if args.refs:
        refs = read_references(args.refs)
        name, trials, references = args.refs, [{"id": k} for k in refs.keys], refs.values
    else:
        bundle = open_bundle(args.path)
        name, trials, references = bundle.name, bundle.trials, bundle.captions
        specs = carried_specs(bundle.path) + specs
    if not specs:
        raise UserError("no model captions: give --captions NAME=FILE (or put caption files in the bundle's models/)")
    models = load_model_captions(specs, trials)
    ids = [str(t["id"]) for t in trials]
    result = compare_models(models, references, ids, table, seed=args.seed)
    if args.csv:
        from brainview.cli.output import write_table

        write_table(args.csv, result["per_trial"])
    lines = [f"{name}: {len(models)} models on {result['n_trials']} test trials"
             + (f" ({result['excluded_trials']} left out: not captioned by every model)" if result["excluded_trials"] else ""),
             table.title, ""]
    for m in models:
        lines.append(f"  {m.name}: {m.path}, matched by {m.matched_by}")
        lines += [f"    {p}" for p in m.problems()]
    width = max(len(m.name) for m in models)
    for metric in table.metrics:
        if metric in result["missing"]:
            lines.append(f"\n{table.label(metric)}: missing: {result['missing'][metric]}")
            continue
        lines.append(f"\n{table.label(metric)}" + ("  (ranking)" if metric == result["ranking_metric"] else "")
                     + "  table value, per-caption mean [95% interval over trials]")
        for name in result["ranking"]:
            s = result["scores"][name][metric]
            lines.append(f"  {name:<{width}}  {table.text(s['value'])}  {table.text(s['mean'])} "
                         f"[{table.text(s['ci95'][0])}, {table.text(s['ci95'][1])}]")
        for pair in (p for p in result["pairs"] if p["metric"] == metric):
            lines.append(f"  {pair['a']} − {pair['b']}: {table.text(pair['difference'])} "
                         f"[{table.text(pair['ci95'][0])}, {table.text(pair['ci95'][1])}]"
                         + ("  significant" if pair["significant"] else "  not significant"))
    if args.csv:
        lines += ["", f"per-trial table: {args.csv}"]
    payload = {k: v for k, v in result.items() if k != "per_trial" or not args.csv}
    return emit(args, payload, lines)


BENCHMARK_COMMANDS = {"score": cmd_score, "compare": cmd_compare}
