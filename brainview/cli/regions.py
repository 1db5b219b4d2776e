"""What the ROI commands (``roi-table``, ``roi-images``; one bundle or a study) share: the region a user
names, the method settings, the ``--truth`` file and the evaluation's text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from brainview.analysis.caption_files import read_text
from brainview.errors import UserError


def region_voxels(bundle, spec: str) -> np.ndarray:
    """The voxels of ``spec``: atlas ROI names (``A,B``) or an ROI file made for this bundle."""
    if Path(spec).suffix in (".json", ".label", ".gii") and Path(spec).is_file():
        from brainview.cortex import roi_io
        from brainview.cortex.surface import Cortex

        cortex = Cortex.from_bundle(bundle)  # roi_io reports a bad file as a UserError
        return (roi_io.load_roi(spec, cortex) if spec.endswith(".json") else roi_io.import_surface_roi(spec, cortex)).voxels
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in bundle.rois]
    if unknown or not names:
        raise UserError(f"no ROI {', '.join(unknown) or spec!r} in {bundle.path}; its ROIs: {', '.join(bundle.rois)}"
                        " (or give an ROI file: .json, .label, .label.gii)")
    return np.unique(np.concatenate([bundle.roi_voxels(n) for n in names]))


def method_options(args, bundle=None) -> dict:
    """The method's settings from the command line, checked."""
    if args.temperature is not None and not args.temperature > 0:
        raise UserError("--temperature must be positive")
    if args.top < 1 or (bundle is not None and args.top > bundle.n_trials):
        raise UserError(f"--top must lie in 1..{bundle.n_trials if bundle is not None else 'the number of trials'}")
    options = {"paper": {"scale": args.scale}, "data": {"top": args.top}, "manifold": {"top": args.top}}
    if args.temperature is not None:
        options["manifold"]["temperature"] = args.temperature
    return options


def read_truth(path: str | None) -> dict[str, str] | None:
    """``--truth``: a JSON object ROI → caption."""
    if path is None:
        return None
    try:
        truth = json.loads(read_text(path, "truth"))
    except json.JSONDecodeError as exc:
        raise UserError(f"truth file {path} is not valid JSON: {exc}") from None
    if not (isinstance(truth, dict) and all(isinstance(v, str) and v.strip() for v in truth.values())):
        raise UserError(f"truth file {path} must be a JSON object of ROI names to captions")
    return truth


def evaluation_lines(result: dict) -> list[str]:
    """The held-out evaluation as text: r per ROI and method, then the means with their intervals."""
    methods = list(result["summary"])
    lines = ["", f"held-out prediction of each ROI's response by its caption (Pearson r over test trials, split "
                 f"halves of {result['halves'][0]} and {result['halves'][1]}; random: {len(result['random_captions'])} "
                 "reference captions)", "  " + " " * 12 + "".join(f"{m:>10}" for m in methods)]
    for name, row in result["regions"].items():
        lines.append(f"  {name:<12}" + "".join(f"{row[m]['r']:+10.3f}" if m in row else f"{'—':>10}" for m in methods))
    lines.append("")
    for m, summary in result["summary"].items():
        above = (f", {summary['above_random_p95']}/{summary['n_regions']} ROIs above the random captions' 95th "
                 "percentile") if "above_random_p95" in summary else ""
        lines.append(f"  {m:<9} mean r {summary['mean_r']:+.3f}  [{summary['ci95'][0]:+.3f}, {summary['ci95'][1]:+.3f}]"
                     + above)
    return lines


