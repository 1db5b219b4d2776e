"""Demo builds side by side: how much of issue 11's concept-map result, and of the other demo figures,
survives another training draw.

    python -m training.demo_world.compare_builds BUNDLE [BUNDLE ...]

One markdown row per bundle (each built by ``python -m training.demo_world build --seed S``): the rank
of the category's area in the plain concept map of ``a photo of a {category}``; how many of the 16
(category, query set) maps put the area first, plain and against the other categories
(:func:`training.demo_world.language_figures.query_sets`); zero-shot scene.category top-1 from the brain
with the template; stage-2 retrieval from the manifest; the ROI table against the keyword rule.
"""

from __future__ import annotations

import argparse

from brainview.bundle import open_bundle
from brainview.decoding.language import LanguageProbe, parse_labels
from training.demo_world.language_figures import AREAS, query_sets
from training.demo_world.roi_rule import KEYWORDS, matches

HEADER = ("| bundle | seed | template map: rank of the area (face, person, sign, place) | areas first, plain "
          "| areas first, against the others | zero-shot category (template) | image_given_brain "
          "| text_given_brain | ROI table |")


def row(path: str) -> str:
    bundle = open_bundle(path)
    probe = LanguageProbe.load(bundle, "cpu")
    rois = {name: spec["voxels"] for name, spec in bundle.rois.items()}
    sets = query_sets(bundle)
    first = {False: 0, True: 0}
    template = []
    for name, queries in sets.items():
        for versus in (False, True):
            for category, area in AREAS.items():
                others = [q for c, q in queries.items() if c != category] if versus else []
                rank = list(probe.concept_map(queries[category], versus=others).roi_means(rois)).index(area) + 1
                first[versus] += rank == 1
                if name == "template" and not versus:
                    template.append(rank)
    total = len(sets) * len(AREAS)
    zero_shot = probe.classify(parse_labels(list(sets["template"])), "scene.category").accuracy
    metrics = bundle.manifest["metrics"]
    retrieval = metrics["stage2"]["retrieval"]
    hits = sum(matches(roi, metrics["roi_table"][roi]) for roi in KEYWORDS)
    return (f"| {path} | {bundle.manifest['provenance'].get('seed')} | {', '.join(map(str, template))} "
            f"| {first[False]}/{total} | {first[True]}/{total} | {zero_shot.top1:.3f} "
            f"| {retrieval['image_given_brain']['top1']:.3f} | {retrieval['text_given_brain']['top1']:.3f} "
            f"| {hits}/{len(KEYWORDS)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+")
    args = parser.parse_args()
    print(HEADER)
    print("|" + " --- |" * (HEADER.count("|") - 1))
    for path in args.bundles:
        print(row(path), flush=True)


if __name__ == "__main__":
    main()
