"""The figures of issue 11 on the demo bundle: phrase search, zero-shot labels and concept maps, each against
its comparison (true image tokens, chance, random lesions) and the subject's ground truth (README.md).

    python -m training.demo_world.language_figures resources/demo --out /tmp/language [--screenshots]

Prints markdown tables; with ``--screenshots`` also renders the main window with each tab of the
language panel (needs Qt; offscreen works). Every number comes from :mod:`brainview.decoding.language`,
the code ``brainview search|classify|localize`` and the GUI run.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from brainview.bundle import open_bundle
from brainview.decoding.language import LanguageProbe, field_value, load_text_encoder, parse_labels

AREAS = {"face": "floc-faces", "person": "floc-bodies", "sign": "floc-words", "place": "floc-places"}
TEMPLATE_PHRASES = {c: f"a photo of a {c}" for c in ("face", "person", "animal", "sign", "place")}
CAPTION_PHRASES = {"face": "a close up of a smiling face", "person": "a man standing", "animal": "a dog standing",
                   "sign": "a sign that says stop", "place": "an empty street with a house"}
SIGN_WORDS = ("stop", "exit", "open", "sale")
TRUTHS = ("scene.category", "scene.place", "scene.colour", "scene.kind")
TOP = 20


def _values(bundle, field):
    return np.array([str(field_value(t, field)) for t in bundle.trials])


def search_table(probe) -> list[str]:
    bundle = probe.bundle
    category, words = _values(bundle, "scene.category"), _values(bundle, "scene.text")
    lines = [f"| phrase | truth | brain precision@{TOP} | true-image precision@{TOP} | chance | Spearman brain~image "
             f"| brain top-{TOP} by category |", "| --- | --- | --- | --- | --- | --- | --- |"]
    rows = [(p, "category", c) for c, p in TEMPLATE_PHRASES.items()]
    rows += [(p, "category", c) for c, p in CAPTION_PHRASES.items()]
    rows += [(f"a sign that says {w}", "word", w) for w in SIGN_WORDS]
    for phrase, kind, value in rows:
        truth = category if kind == "category" else words
        result = probe.search(phrase)
        brain, image = result.order[:TOP], np.argsort(-result.image, kind="stable")[:TOP]
        counts = ", ".join(f"{k} {n}" for k, n in Counter(category[brain]).most_common(3))
        lines.append(f"| {phrase} | {kind} = {value} | {(truth[brain] == value).mean():.2f} | "
                     f"{(truth[image] == value).mean():.2f} | {(truth == value).mean():.2f} | {result.agreement:.2f} | "
                     f"{counts} |")
    return lines


def zero_shot_table(probe) -> list[str]:
    bundle = probe.bundle
    lines = ["| truth | labels | brain top-1 [95% CI] | true image top-1 [95% CI] | chance | brain top-5 | image top-5 |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for field in TRUTHS:
        names = sorted(set(_values(bundle, field)))
        result = probe.classify(parse_labels(names), field)
        a, i = result.accuracy, result.image_accuracy
        lines.append(f"| {field} | {len(names)} | {a.top1:.3f} [{a.ci95[0]:.3f}, {a.ci95[1]:.3f}] | "
                     f"{i.top1:.3f} [{i.ci95[0]:.3f}, {i.ci95[1]:.3f}] | {a.chance:.3f} | {a.top5:.3f} | {i.top5:.3f} |")
    return lines


def concept_table(probe, versus: bool, captioner=None) -> list[str]:
    bundle = probe.bundle
    rois = {name: spec["voxels"] for name, spec in bundle.rois.items()}
    lines = ["| phrase | area (truth) | best ROIs (map mean) | rank of area | lesion top 5%: drop | random 5% (20 draws) "
             "| caption intact → lesioned |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for phrases in (TEMPLATE_PHRASES, CAPTION_PHRASES):
        for category, area in AREAS.items():
            phrase = phrases[category]
            others = [p for c, p in phrases.items() if c != category] if versus else []
            concept = probe.concept_map(phrase, versus=others)
            means = concept.roi_means(rois)
            check = probe.lesion(concept, captioner=captioner)
            best = ", ".join(f"{n} {v:+.2f}" for n, v in list(means.items())[:3])
            captions = (f"{check.caption_before} → {check.caption_after}" if check.caption_before is not None else "—")
            lines.append(f"| {phrase} | {area} | {best} | {list(means).index(area) + 1} | {check.score_drop:+.3f} "
                         f"(of {check.score_before:.3f}) | {check.random_score_drop:+.3f} ± {check.random_score_drop_sd:.3f} "
                         f"| {captions} |")
    return lines


def screenshots(path: str, out: Path) -> list[Path]:
    """The window with the language panel's three tabs, each after one query."""
    from brainview.qt.app import application
    from brainview.qt.main_window import QtMainWindow

    app = application()
    window = QtMainWindow(device="cpu")
    written = []
    try:
        window.resize(1600, 1000)
        window.show()
        window.open_bundle_now(path)
        session, tools, panel = window.session, window.session.language, window.language_panel
        tools.set_probe(tools.prepare(session.bundle, "cpu"))
        window.left_tabs.setCurrentWidget(panel)
        shots = []

        def search():
            panel.search_edit.blockSignals(True)
            panel.search_edit.setText("a sign that says stop")
            panel.search_edit.blockSignals(False)
            tools.set_search(tools.probe, tools.run_search(tools.probe, "a sign that says stop"))
            window.browser.sort_by_match()
            panel.tabs.setCurrentIndex(0)

        def zero_shot():
            panel.truth_combo.setCurrentIndex(panel.truth_combo.findData("scene.category"))
            panel.labels_from_field()
            tools.set_zero_shot(tools.probe, tools.run_classify(tools.probe, panel.labels_edit.text().split(","),
                                                                truth_field="scene.category"))
            panel.tabs.setCurrentIndex(1)

        def concept():
            panel.concept_edit.setText("a photo of a person")
            tools.set_concept(tools.probe, tools.run_concept(tools.probe, "a photo of a person", None, 0.05,
                                                             session.decoder))
            panel.tabs.setCurrentIndex(2)

        shots = [("search", search), ("zero_shot", zero_shot), ("concept", concept)]
        out.mkdir(parents=True, exist_ok=True)
        for name, prepare in shots:
            prepare()
            if session.can_caption:
                session.store_captions(session.caption_trial())
            for _ in range(5):
                app.processEvents()
            target = out / f"language_{name}.png"
            window.grab_with_cortex().save(str(target), "PNG")
            written.append(target)
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--out", default="/tmp/language")
    parser.add_argument("--screenshots", action="store_true")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    bundle = open_bundle(args.bundle)
    probe = LanguageProbe(bundle, load_text_encoder(bundle, args.device).text_embeddings)
    from brainview.decoding.decoder import Decoder

    decoder = Decoder.load(bundle, device=args.device)
    captioner = decoder.captions if decoder.can_caption else None
    print("## Phrase search\n", *search_table(probe), sep="\n")
    print("\n## Zero-shot labels (template 'a photo of a {}')\n", *zero_shot_table(probe), sep="\n")
    print("\n## Concept maps (covariance over the test trials, phrase score)\n", *concept_table(probe, False, captioner),
          sep="\n")
    print("\n## Concept maps against the other categories' phrases (zero-shot probability)\n",
          *concept_table(probe, True, captioner), sep="\n")
    if args.screenshots:
        for path in screenshots(args.bundle, Path(args.out)):
            print(f"\nscreenshot: {path}")


if __name__ == "__main__":
    main()
