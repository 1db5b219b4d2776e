"""The figures of issue 11 on the demo bundle: phrase search, zero-shot labels and concept maps, each against
its comparison (true image tokens, chance, random lesions) and the subject's ground truth (README.md).

    python -m training.demo_world.language_figures resources/demo --out /tmp/language [--screenshots]

Prints markdown tables; with ``--screenshots`` also renders the main window with each tab of the
language panel (run it under xvfb-run with QT_QPA_PLATFORM=xcb, or offscreen). Every number comes
from :mod:`brainview.decoding.language`, the code ``brainview search|classify|localize`` and the GUI run.

The category queries come in four sets, each fixed by a rule before it was run, and every set is
shown in full (none is picked by its result):
- ``template``: CLIP's default, ``a photo of a {category}`` (the raw label);
- ``caption``: one caption-style phrase per category (issue 11's first figures);
- ``kinds``: the label's prompts from the scenes it covers, the template over the ``scene.kind``
  values of the category (``field_labels``: place = barn, couch, house, umbrella);
- ``grammar``: "a photo of" + the noun phrases the demo's caption grammar (``scenes.describe``) uses
  for each kind of the category, colour left out.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from brainview.bundle import open_bundle
from brainview.decoding.language import LanguageProbe, field_labels, field_value, parse_labels, parse_query
from brainview.decoding.language.vocabulary import words

CATEGORIES = ("face", "person", "animal", "sign", "place")
AREAS = {"face": "floc-faces", "person": "floc-bodies", "sign": "floc-words", "place": "floc-places"}
CAPTION_PHRASES = {"face": "a close up of a smiling face", "person": "a man standing", "animal": "a dog standing",
                   "sign": "a sign that says stop", "place": "an empty street with a house"}
GRAMMAR_NOUNS = {"face": ("a smiley face", "a cartoon face", "a smiling face"),
                 "person": ("a person", "a man", "two people"), "animal": ("a dog", "a cat", "a bird"),
                 "sign": tuple(f"a sign that says {w}" for w in ("stop", "exit", "open", "sale")),
                 "place": ("an empty street with a house", "an empty field with a barn",
                           "an empty beach with an umbrella", "an empty room with a couch")}
PLACE_PROBES = ("a photo of a street", "a photo of a room", "a photo of a beach", "a photo of a field")
DIAGNOSIS_WORDS = ("place", "places", "animal", "scene", "face", "person", "sign", "empty", "street", "room", "beach",
                   "field", "house", "barn", "umbrella", "couch")
SIGN_WORDS = ("stop", "exit", "open", "sale")
TRUTHS = ("scene.category", "scene.place", "scene.colour", "scene.kind")
TOP = 20


def query_sets(bundle) -> dict[str, dict[str, str]]:
    """Category → query spec, for each rule-made set (module docstring)."""
    kinds = dict(spec.split("=", 1) for spec in field_labels(bundle.trials, "scene.category", "scene.kind"))
    return {"template": {c: f"a photo of a {c}" for c in CATEGORIES},
            "caption": dict(CAPTION_PHRASES),
            "kinds": {c: f"{c}={kinds[c]}" for c in CATEGORIES},
            "grammar": {c: f"{c}=" + ";".join(f"a photo of {n}" for n in GRAMMAR_NOUNS[c]) for c in CATEGORIES}}


def _values(bundle, field):
    return np.array([str(field_value(t, field)) for t in bundle.trials])


def _unknown(unknown: dict) -> str:
    return ", ".join(f"{w} ({'·'.join(p)})" for w, p in unknown.items()) or "—"


def _shown(spec: str) -> str:
    query = parse_query(spec)
    return query.name if query.prompts == (query.name,) else f"{query.name} = {' ; '.join(query.prompts)}"


def diagnosis_tables(probe, seed: int, size: str) -> list[str]:
    """Does a word occur in the training captions (regenerated from the demo world's seed), in the bundle's
    reference captions, as one token? And where does "a photo of a place" sit in the text space?"""
    from training.demo_world.scenes import split_scenes

    splits = split_scenes(seed, size)
    train = [c for caps in splits["train"].captions for c in caps]
    if splits["test"].captions != probe.bundle.captions:
        raise SystemExit("the regenerated test captions differ from the bundle's: wrong seed or size")
    references = [c for caps in probe.bundle.captions for c in caps]
    count = lambda texts, w: sum(words(t).count(w) for t in texts)  # noqa: E731
    lines = [f"Training captions regenerated with `split_scenes({seed}, {size!r})` ({len(train)} captions; the bundle's "
             f"{len(references)} reference captions equal the regenerated test split's).", "",
             "| word | in training captions | in reference captions | tokenizer pieces | vocabulary check |",
             "| --- | --- | --- | --- | --- |"]
    for w in DIAGNOSIS_WORDS:
        pieces = probe.pieces(w)
        verdict = "unknown" if w in probe.unknown_words([w]) else "known"
        lines.append(f"| {w} | {count(train, w)} | {count(references, w)} | {'·'.join(pieces)} | {verdict} |")
    phrase = "a photo of a place"
    e = probe.phrase_embedding(phrase)
    cosines = {c: float(probe.phrase_embedding(f"a photo of a {c}") @ e) for c in CATEGORIES if c != "place"}
    embedded = probe.embed_texts(references)
    nearest = np.argsort(-(embedded @ e))[:5]
    category = _values(probe.bundle, "scene.category")
    trial_of = [t for t, caps in enumerate(probe.bundle.captions) for _ in caps]
    lines += ["", f"Text space around {phrase!r}: cosine with " +
              ", ".join(f"'a photo of a {c}' {v:.2f}" for c, v in cosines.items()) +
              "; nearest reference captions: " +
              "; ".join(f"“{references[i]}” ({category[trial_of[i]]}, {embedded[i] @ e:.3f})" for i in nearest)]
    return lines


def _eta_squared(score: np.ndarray, groups: np.ndarray) -> float:
    """Share of the score's variance between the groups' means (one-way ANOVA's eta²)."""
    mean = score.mean()
    between = sum((groups == g).sum() * (score[groups == g].mean() - mean) ** 2 for g in np.unique(groups))
    return float(between / ((score - mean) ** 2).sum())


def variance_table(probe, sets) -> list[str]:
    """What a category query's brain score follows across the trials: the background (scene.place) or the category."""
    background, category = _values(probe.bundle, "scene.place"), _values(probe.bundle, "scene.category")
    lines = ["| set | query | η² of scene.place (background) | η² of its category vs the rest | η² of scene.category |",
             "| --- | --- | --- | --- | --- |"]
    for set_name, queries in sets.items():
        for c in ("person", "place"):
            result = probe.search(queries[c])
            lines.append(f"| {set_name} | {result.phrase} | {_eta_squared(result.brain, background):.2f} | "
                         f"{_eta_squared(result.brain, category == c):.2f} | {_eta_squared(result.brain, category):.2f} |")
    return lines


def search_table(probe, sets) -> list[str]:
    bundle = probe.bundle
    category, text = _values(bundle, "scene.category"), _values(bundle, "scene.text")
    lines = [f"| set | query | truth | unknown words | brain precision@{TOP} | true-image precision@{TOP} | chance "
             f"| Spearman brain~image | brain top-{TOP} by category |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    rows = [(name, spec, "category", c) for name, queries in sets.items() for c, spec in queries.items()]
    rows += [("place probes", p, "category", "place") for p in PLACE_PROBES]
    rows += [("sign words", f"a sign that says {w}", "word", w) for w in SIGN_WORDS]
    for set_name, spec, kind, value in rows:
        truth = category if kind == "category" else text
        result = probe.search(spec)
        brain, image = result.order[:TOP], np.argsort(-result.image, kind="stable")[:TOP]
        counts = ", ".join(f"{k} {n}" for k, n in Counter(category[brain]).most_common(3))
        lines.append(f"| {set_name} | {result.phrase} | {kind} = {value} | {_unknown(result.unknown)} | "
                     f"{(truth[brain] == value).mean():.2f} | {(truth[image] == value).mean():.2f} | "
                     f"{(truth == value).mean():.2f} | {result.agreement:.2f} | {counts} |")
    return lines


def zero_shot_table(probe, sets) -> tuple[list[str], list[str]]:
    bundle = probe.bundle
    lines = ["| truth | labels (prompts) | labels with unknown words | brain top-1 [95% CI] | true image top-1 [95% CI] "
             "| chance | brain top-5 | image top-5 |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    confusions = []
    runs = [(field, "template", sorted(set(_values(bundle, field)))) for field in TRUTHS]
    runs[1:1] = [("scene.category", name, [sets[name][c] if "=" in sets[name][c] else f"{c}={sets[name][c]}"
                                           for c in CATEGORIES]) for name in ("caption", "kinds", "grammar")]
    for field, name, specs in runs:
        result = probe.classify(parse_labels(specs), field)
        a, i = result.accuracy, result.image_accuracy
        flagged = ", ".join(f"{n} ({', '.join(u)})" for n, u in result.unknown.items()) or "—"
        lines.append(f"| {field} | {len(specs)} ({name}) | {flagged} | {a.top1:.3f} [{a.ci95[0]:.3f}, {a.ci95[1]:.3f}] | "
                     f"{i.top1:.3f} [{i.ci95[0]:.3f}, {i.ci95[1]:.3f}] | {a.chance:.3f} | {a.top5:.3f} | {i.top5:.3f} |")
        if field == "scene.category":
            rows = "; ".join(f"{n} {'/'.join(map(str, r))}" for n, r in zip(result.names, a.confusion))
            confusions.append(f"- {name}: (columns {', '.join(result.names)}) {rows}")
    return lines, confusions


def concept_table(probe, sets, versus: bool, captioner=None) -> list[str]:
    rois = {name: spec["voxels"] for name, spec in probe.bundle.rois.items()}
    lines = ["| set | query | area (truth) | unknown words | best ROIs (map mean) | rank of area | lesion top 5%: drop "
             "| random 5% (20 draws) | caption intact → lesioned |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for set_name, queries in sets.items():
        for category, area in AREAS.items():
            spec = queries[category]
            others = [q for c, q in queries.items() if c != category] if versus else []
            concept = probe.concept_map(spec, versus=others)
            means = concept.roi_means(rois)
            check = probe.lesion(concept, captioner=captioner)
            best = ", ".join(f"{n} {v:+.2f}" for n, v in list(means.items())[:3])
            captions = (f"{check.caption_before} → {check.caption_after}" if check.caption_before is not None else "—")
            lines.append(f"| {set_name} | {concept.phrase} | "
                         f"{area} | {_unknown(concept.unknown)} | {best} | {list(means).index(area) + 1} | "
                         f"{check.score_drop:+.3f} (of {check.score_before:.3f}) | "
                         f"{check.random_score_drop:+.3f} ± {check.random_score_drop_sd:.3f} | {captions} |")
    return lines


def screenshots(path: str, out: Path) -> list[Path]:
    """The window with the language panel's tabs, each after one query, driven as a user would."""
    from brainview.qt.app import application
    from brainview.qt.main_window import QtMainWindow

    app = application()
    window = QtMainWindow(device="cpu")
    written = []
    try:
        window.resize(1800, 1100)
        window.show()
        window.open_bundle_now(path)
        session, tools, panel = window.session, window.session.language, window.language_panel
        tools.set_probe(tools.prepare(session.bundle, "cpu"))
        window.left_tabs.setCurrentWidget(panel)

        def search(phrase):
            def run():
                panel.search_edit.blockSignals(True)
                panel.search_edit.setText(phrase)
                panel.search_edit.blockSignals(False)
                tools.set_search(tools.probe, tools.run_search(tools.probe, phrase))
                window.browser.sort_by_match()
                panel.tabs.setCurrentIndex(0)
            return run

        def zero_shot():
            panel.truth_combo.setCurrentIndex(panel.truth_combo.findData("scene.category"))
            panel.prompts_combo.setCurrentIndex(panel.prompts_combo.findData("scene.kind"))
            panel.labels_from_field()
            tools.set_zero_shot(tools.probe, tools.run_classify(tools.probe, panel.labels_edit.text().split(","),
                                                                truth_field="scene.category"))
            panel.tabs.setCurrentIndex(1)

        def concept(phrase=None):
            """The plain map of ``phrase``, or (None) the place label's prompts against the other labels."""
            def run():
                if phrase is None:
                    panel.label_combo.setCurrentIndex(panel.label_combo.findData("place"))
                    panel._label_chosen()
                else:
                    panel.concept_edit.setText(phrase)
                    panel.versus_edit.clear()
                versus = [v for v in panel.versus_edit.text().split(",") if v.strip()]
                tools.set_concept(tools.probe, tools.run_concept(tools.probe, panel.concept_edit.text(), None, 0.05,
                                                                 session.decoder, versus))
                panel.tabs.setCurrentIndex(2)
                if window.cortex_view is not None:
                    window.cortex_view.set_view("posterior")  # the modelled cortex is occipito-temporal
            return run

        shots = [("search", search("a sign that says stop")), ("search_place", search("a photo of a place")),
                 ("zero_shot", zero_shot), ("concept", concept()), ("concept_place", concept("a photo of a place"))]
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
    probe = LanguageProbe.load(bundle, args.device)
    sets = query_sets(bundle)
    from brainview.decoding.decoder import Decoder

    decoder = Decoder.load(bundle, device=args.device)
    captioner = decoder.captions if decoder.can_caption else None
    provenance = bundle.manifest.get("provenance", {})
    print("## Query sets\n")
    for name, queries in sets.items():
        print(f"- {name}: " + " | ".join(_shown(q) for q in queries.values()))
    print("\n## Vocabulary: is 'place' a word of the retrieval model?\n",
          *diagnosis_tables(probe, int(provenance.get("seed", 0)), provenance.get("size", "full")), sep="\n")
    print("\n## What the category queries' brain scores follow\n", *variance_table(probe, sets), sep="\n")
    print("\n## Phrase search\n", *search_table(probe, sets), sep="\n")
    table, confusions = zero_shot_table(probe, sets)
    print("\n## Zero-shot labels (template 'a photo of a {}' unless the label carries its prompts)\n", *table, "",
          "Confusion of scene.category from the brain (rows truth; columns top-1):", *confusions, sep="\n")
    print("\n## Concept maps (covariance over the test trials, phrase score)\n",
          *concept_table(probe, sets, False, captioner), sep="\n")
    print("\n## Concept maps against the other categories' queries of the same set (zero-shot probability)\n",
          *concept_table(probe, sets, True, captioner), sep="\n")
    if args.screenshots:
        for path in screenshots(args.bundle, Path(args.out)):
            print(f"\nscreenshot: {path}")


if __name__ == "__main__":
    main()
