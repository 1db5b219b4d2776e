"""The figures of issue 26 on the demo: what each ROI prefers by the paper's pattern, on the natural-image
manifold and from the data, against the planted truth (README.md, "Ground truth"; ``roi_rule.py``).

    python -m training.demo_world.roi_method_figures [BUNDLE_OR_STUDY ...] [--temperatures 0.005,0.01,...]
                                                     [--screenshots FOLDER]

Prints markdown: per bundle the three methods' captions side by side with the keyword rule's verdict,
the words of the manifold and data methods, the preferred stimuli's category check against random voxel
sets, the temperature sweep of the manifold method, and the held-out evaluation (paper, manifold, data,
truth, random captions). Every number comes from the code ``brainview roi-table|roi-images`` runs.
``--screenshots`` also grabs the main window on the demo (offscreen works): the preferred-stimuli mode on
floc-faces (the window and its dock alone) and the manifold mode on floc-bodies.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from brainview.analysis.preferred import preferred_stimuli
from brainview.analysis.roi_evaluation import heldout_prediction
from brainview.analysis.roi_methods import METHODS, describe_regions
from brainview.analysis.study import is_study, load_study
from brainview.bundle import open_bundle
from brainview.decoding.decoder import Decoder
from brainview.decoding.language import LanguageProbe
from brainview.paths import demo_bundle_path
from training.demo_world.roi_rule import KEYWORDS, TRUTH_CAPTIONS, matches

STAGE = "stage2"


def bundle_figures(bundle, temperatures: list[float]) -> list[str]:
    decoder = Decoder.load(bundle, device="cpu")
    regions = {n: bundle.roi_voxels(n) for n in bundle.rois if n in KEYWORDS}
    described = {m: describe_regions(decoder, regions, STAGE, m) for m in METHODS}
    hits = {m: sum(matches(n, described[m][n]["caption"]) for n in regions) for m in METHODS}
    lines = [f"### {bundle.name} ({bundle.path})", "",
             "| ROI | " + " | ".join(f"{m} ({hits[m]}/{len(regions)})" for m in METHODS) + " |",
             "|---|" + "---|" * len(METHODS)]
    for n in regions:
        cells = [("✓ " if matches(n, described[m][n]["caption"]) else "✗ ") + described[m][n]["caption"] for m in METHODS]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", "| ROI | manifold words (of its 10 closest bank images) | data words (of its 10 preferred stimuli) "
                  "| preferred stimuli: top category, p (200 random voxel sets) |", "|---|---|---|---|"]
    for n, voxels in regions.items():
        check = preferred_stimuli(bundle, voxels).check("scene.category")
        words = {m: ", ".join(f"{w['term']} {w['count']}" for w in described[m][n]["words"]) for m in ("manifold", "data")}
        lines.append(f"| {n} | {words['manifold']} | {words['data']} | {check.value} {check.count}/{check.top} "
                     f"(overall {check.base_share:.0%}), p = {check.p_value:.3f} |")
    lines += ["", "Manifold temperature sweep: ROIs whose caption matches the truth; effective bank images (min–max)", ""]
    for temperature in temperatures:
        made = describe_regions(decoder, regions, STAGE, "manifold", temperature=temperature)
        effective = [r["effective_images"] for r in made.values()]
        lines.append(f"- {temperature:g}: {sum(matches(n, made[n]['caption']) for n in regions)}/{len(regions)}, "
                     f"{min(effective):.1f}–{max(effective):.1f} images")
    result = heldout_prediction(decoder, LanguageProbe.load(bundle, device="cpu"), regions, STAGE,
                                truth=TRUTH_CAPTIONS)
    columns = list(result["summary"])
    lines += ["", "Held-out prediction (Pearson r of the caption's score with the ROI's response, split halves, "
                  "95% bootstrap interval)", "", "| ROI | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for n, row in result["regions"].items():
        lines.append(f"| {n} | " + " | ".join(f"{row[c]['r']:+.3f}" for c in columns) + " |")
    lines.append("| **mean** | " + " | ".join(
        f"**{result['summary'][c]['mean_r']:+.3f}** [{result['summary'][c]['ci95'][0]:+.3f}, "
        f"{result['summary'][c]['ci95'][1]:+.3f}]" for c in columns) + " |")
    lines.append("| ROIs above the random captions' 95th pct | " + " | ".join(
        str(result["summary"][c].get("above_random_p95", "—")) for c in columns) + " |")
    return lines


def screenshots(folder: Path) -> list[Path]:
    """The window in the preferred-stimuli mode (floc-faces) and the manifold mode (floc-bodies), as PNGs."""
    import tempfile
    import time

    from PySide6.QtCore import QSettings

    from brainview.qt.app import application
    from brainview.qt.main_window import QtMainWindow

    app = application()
    folder.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory()
    window = QtMainWindow(device="cpu", settings=QSettings(str(Path(scratch.name) / "s.ini"), QSettings.IniFormat))
    panel, written = window.roi_panel, []

    def shown(mode: str, ready=lambda: True) -> None:
        deadline = time.time() + 120
        while True:
            app.processEvents()
            synthetic = window.trial_view.synthetic
            if synthetic is not None and synthetic.settings.mode == mode and synthetic.decoded.caption and ready():
                break
            if time.time() > deadline:
                raise TimeoutError(f"the {mode} mode did not decode within 2 minutes")
            time.sleep(0.02)
        for _ in range(5):
            app.processEvents()

    def save(widget, name: str) -> None:
        written.append(folder / name)
        (widget.grab_with_cortex() if widget is window else widget.grab()).save(str(written[-1]), "PNG")

    try:
        window.resize(1600, 1000)
        window.show()
        window.open_bundle_now(demo_bundle_path())
        panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("data"))
        panel.set_checked(["floc-faces"])
        shown("data", lambda: window.preferred_view.found is not None)
        save(window, "issue-26-preferred-stimuli.png")
        save(window.preferred_dock, "issue-26-preferred-view.png")
        panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("manifold"))
        window.preferred_dock.hide()
        panel.set_checked(["floc-bodies"])
        shown("manifold")
        save(window, "issue-26-manifold-mode.png")
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()
        scratch.cleanup()
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="bundles or a study (default: the embedded demo)")
    parser.add_argument("--temperatures", default="0.005,0.01,0.02,0.05,0.1")
    parser.add_argument("--screenshots", metavar="FOLDER", help="also grab the window in the two new modes")
    args = parser.parse_args(argv)
    temperatures = [float(t) for t in args.temperatures.split(",")]
    bundles = []
    for path in args.paths or [str(demo_bundle_path())]:
        if is_study(path):
            study = load_study(path)
            bundles += [study.bundle(s) for s in study.ids]
        else:
            bundles.append(open_bundle(Path(path)))
    for bundle in bundles:
        print("\n".join(bundle_figures(bundle, temperatures)), end="\n\n", flush=True)
    if args.screenshots:
        print("\n".join(str(p) for p in screenshots(Path(args.screenshots))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
