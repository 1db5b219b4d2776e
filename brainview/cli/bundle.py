"""The commands about a bundle's files: ``info`` (validate and summarize) and ``cache`` (add the
prediction cache, bundle format version 2). :func:`add_bundle_commands` adds their parsers to the
``brainview`` command, :data:`BUNDLE_COMMANDS` maps them to their functions.
"""

from __future__ import annotations

import sys
import time

from brainview.cli.output import emit, open_bundle
from brainview.errors import UserError


def add_bundle_commands(add) -> None:
    """Register ``info`` and ``cache`` with the ``add(name, help, ...)`` of :func:`brainview.cli.build_parser`."""
    add("info", "validate and summarize a bundle")
    p = add("cache", "add a prediction cache to a bundle (every test trial's predicted tokens, so the app ranks "
                     "every trial at once); replaces an existing one atomically", path_required=True)
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                   help="stored precision (default float16: half the size, ranks as with float32)")


def cmd_info(args) -> int:
    bundle = open_bundle(args.path)
    m = bundle.manifest
    summary = {
        "path": str(bundle.path), "valid": True, "name": m["name"], "dataset": m["dataset"], "subject": m["subject"],
        "n_trials": bundle.n_trials, "n_voxels": bundle.n_voxels, "n_query": bundle.n_query,
        "query_dim": bundle.query_dim, "text_dim": bundle.text_dim, "n_texts": int(bundle.text_embeddings.shape[0]),
        "stages": bundle.stages, "stimulus_size": list(bundle.stimuli.shape[1:3]),
        "n_vertices": bundle.n_vertices, "rois": {n: int(r["voxels"].size) for n, r in bundle.rois.items()},
        "vlm": bundle.vlm, "metrics": m.get("metrics", {}),
        "n_questions": None if bundle.questions is None else sum(len(q) for q in bundle.questions),
        "single_trials": None if bundle.fmri_repeats is None else {
            "max_repeats": bundle.max_repeats,
            "trials_by_repeats": {str(c): int((bundle.repeat_counts == c).sum()) for c in sorted(set(bundle.repeat_counts.tolist()))}},
    }
    lines = [f"{bundle.path}: valid brainview bundle (format version {m['version']})",
             f"  name        {m['name']}", f"  dataset     {m['dataset']}, subject {m['subject']}",
             f"  trials      {bundle.n_trials} test trials, {summary['n_texts']} reference captions",
             f"  voxels      {bundle.n_voxels}", f"  tokens      {bundle.n_query} × {bundle.query_dim}, text {bundle.text_dim}",
             f"  stages      {', '.join(bundle.stages)}",
             f"  cortex      {bundle.n_vertices['lh']} + {bundle.n_vertices['rh']} vertices, {len(bundle.rois)} ROIs",
             f"  captioner   {bundle.vlm.get('captioner')}", f"  retrieval   {bundle.vlm.get('retrieval')}",
             f"  questions   {summary['n_questions'] if bundle.questions is not None else 'none'}",
             "  repeats     " + ("each image's mean only" if bundle.fmri_repeats is None else
                                 ", ".join(f"{n} trials with {c}" for c, n in summary["single_trials"]["trials_by_repeats"].items())
                                 + " (eval --fmri-repeats 1|2)")]
    cache = _cache_summary(bundle)
    summary["predictions"] = cache
    lines.append("  predictions " + ("none (every trial is predicted when the app opens it; `brainview cache` adds "
                                     "them)" if cache is None else
                                     f"{', '.join(cache['stages'])} cached in {cache['dtype']}, "
                                     + (f"not used: {cache['problem']}; `brainview cache` rebuilds it"
                                        if cache["problem"] else
                                        f"fingerprints and {cache['checked_trials']} sampled trials match the "
                                        "weights and fMRI")))
    return emit(args, summary, lines)


def _cache_summary(bundle) -> dict | None:
    """The prediction cache as ``info`` reports it: what is cached and whether the app would use it
    (the same check as when the app opens the bundle: files, fingerprints, a sample of trials)."""
    from brainview.decoding.decoder import Decoder
    from brainview.decoding.prediction_cache import check_cache

    spec = bundle.manifest.get("predictions") if bundle.manifest["version"] >= 2 else None
    if spec is None:
        return None
    check = check_cache(Decoder(bundle))
    return {"stages": list(spec["stages"]), "dtype": spec["dtype"], "problem": check.problem,
            "checked_trials": len(check.trials)}


def cmd_cache(args) -> int:
    from brainview.decoding.prediction_cache import add_cache

    started = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int, what: str) -> None:
        now = time.perf_counter()
        if not args.json and (now - last[0] > 2 or done == total):
            last[0] = now
            print(f"brainview: {what}: {done / total:.0%}", file=sys.stderr, flush=True)

    try:
        bundle, check = add_cache(args.path, dtype=args.dtype, progress=progress)
    except OSError as exc:
        raise UserError(f"cannot write the prediction cache into {args.path}: {exc.strerror or exc}") from None
    summary = {"path": str(bundle.path), "version": bundle.manifest["version"], "stages": check.stages,
               "dtype": args.dtype, "checked_trials": len(check.trials), "max_relative_error": check.max_error,
               "seconds": round(time.perf_counter() - started, 1)}
    lines = [f"{bundle.path}: predictions of {bundle.n_trials} test trials cached for {', '.join(check.stages)} "
             f"in {args.dtype} (format version {summary['version']}); {len(check.trials)} trials checked against "
             f"the weights, largest relative difference {check.max_error:.1e}"]
    return emit(args, summary, lines)


BUNDLE_COMMANDS = {"info": cmd_info, "cache": cmd_cache}
