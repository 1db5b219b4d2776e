"""Which description of a region predicts it better, LaVCa's way (Matsuyama et al., ICLR 2026).

A region's caption is embedded by the retrieval model's text encoder; its score with each test image
(the image's true tokens through the stage-2 projection: ``LanguageProbe.image_projected``, the
``text_given_brain`` score) predicts the region's mean response on that trial. The prediction is the
correlation over held-out trials: the test trials are split in two seeded halves, the manifold and
data methods are fitted on one half (direction, bank and top trials) and scored on the other, and the
two correlations are averaged. The paper's pattern uses no test trial; it is scored on both halves
the same way. Controls: reference captions of random test trials (``draws`` of them, the same for
every region) and, where given, a ground-truth caption per region (the demo world's planted preference).
Intervals: 95% percentile bootstrap over the held-out trials.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from brainview.analysis.roi_methods import METHODS, describe_regions
from brainview.decoding.manifold import region_response
from brainview.decoding.retrieval import text_scores

RANDOM_DRAWS = 20
BOOTSTRAP = 1000


def _column_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``x`` (…, n, c) with ``y`` (…, n), over n."""
    x = x - x.mean(axis=-2, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((x ** 2).sum(axis=-2) * (y ** 2).sum(axis=-1)[..., None])
    return np.where(denominator > 0, (x * y[..., None]).sum(axis=-2) / np.maximum(denominator, 1e-30), 0.0)


def split_halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2:])


def heldout_prediction(decoder, probe, regions: dict[str, np.ndarray], stage: str, *,
                       methods: Sequence[str] = METHODS, truth: dict[str, str] | None = None,
                       draws: int = RANDOM_DRAWS, seed: int = 0, bootstrap: int = BOOTSTRAP,
                       options: dict[str, dict] | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Per region and per method (and ``random``, ``truth``): the held-out correlation ``r`` with its
    ``ci95``, the captions used, and the share of random captions it beats; ``summary``: per method the
    mean r over regions with its interval and how many regions beat the random captions' 95th percentile.
    ``options``: per method, the settings of :func:`~brainview.analysis.roi_methods.region_tokens`."""
    bundle = decoder.bundle
    halves = split_halves(bundle.n_trials, seed)
    responses = {name: region_response(bundle.fmri, voxels) for name, voxels in regions.items()}
    rng = np.random.default_rng(seed)
    pool = [(t, c) for t, refs in enumerate(bundle.captions) for c in range(len(refs))]
    random_captions = [bundle.captions[t][c] for t, c in (pool[i] for i in rng.choice(len(pool), draws, replace=False))]
    # captions[method][region] -> one caption per half (the half it was fitted on is the other one)
    captions: dict[str, dict[str, list[str]]] = {}
    for method in methods:
        if progress is not None:
            progress(f"captioning the regions by the {method} method")
        settings = (options or {}).get(method, {})
        if method == "paper":
            made = describe_regions(decoder, regions, stage, method, **settings)
            captions[method] = {name: [made[name]["caption"]] * 2 for name in regions}
            continue
        fitted = [describe_regions(decoder, regions, stage, method, trials=halves[1 - h], **settings) for h in (0, 1)]
        captions[method] = {name: [fitted[h][name]["caption"] for h in (0, 1)] for name in regions}
    if truth:
        captions["truth"] = {name: [truth[name]] * 2 for name in regions if name in truth}
    texts = sorted({c for by_region in captions.values() for pair in by_region.values() for c in pair}
                   | set(random_captions))
    column = {t: i for i, t in enumerate(texts)}
    scores = text_scores(probe.image_projected, probe.embed_texts(texts)).astype(np.float64)  # (n_trials, n_texts)
    boot = [np.random.default_rng(seed + 1 + h).integers(0, len(halves[h]), (bootstrap, len(halves[h])))
            for h in (0, 1)]

    def correlations(name: str, pair: Sequence[str]) -> tuple[float, np.ndarray]:
        """r (mean of the halves) and its bootstrap draws for the captions scored on halves 0 and 1."""
        r, draws_r = 0.0, 0.0
        for h in (0, 1):
            trials = halves[h]
            x = scores[trials][:, [column[pair[h]]]]
            y = responses[name][trials]
            r += _column_correlations(x, y)[0] / 2
            draws_r = draws_r + _column_correlations(x[boot[h]], y[boot[h]])[:, 0] / 2
        return float(r), draws_r

    random_idx = [column[t] for t in random_captions]
    out: dict = {"regions": {}, "random_captions": random_captions, "halves": [len(h) for h in halves],
                 "seed": seed}
    per_method: dict[str, list[np.ndarray]] = {m: [] for m in [*captions, "random"]}
    point: dict[str, list[float]] = {m: [] for m in per_method}
    beats: dict[str, int] = {m: 0 for m in captions}
    for name in regions:
        random_r = np.mean([_column_correlations(scores[halves[h]][:, random_idx], responses[name][halves[h]])
                            for h in (0, 1)], axis=0)  # (draws,)
        random_boot = sum(_column_correlations(scores[halves[h]][boot[h]][:, :, random_idx],
                                               responses[name][halves[h]][boot[h]]).mean(axis=1) / 2 for h in (0, 1))
        row = {"random": {"r": float(random_r.mean()), "ci95": _interval(random_boot),
                          "p95": float(np.quantile(random_r, 0.95))}}
        per_method["random"].append(random_boot)
        point["random"].append(float(random_r.mean()))
        for method, by_region in captions.items():
            if name not in by_region:
                continue
            r, r_boot = correlations(name, by_region[name])
            row[method] = {"r": r, "ci95": _interval(r_boot), "captions": list(dict.fromkeys(by_region[name])),
                           "beats_random": float((random_r < r).mean())}
            beats[method] += int(r > row["random"]["p95"])
            per_method[method].append(r_boot)
            point[method].append(r)
        out["regions"][name] = row
    out["summary"] = {m: {"mean_r": float(np.mean(point[m])), "ci95": _interval(np.mean(per_method[m], axis=0)),
                          "n_regions": len(point[m]),
                          **({"above_random_p95": beats[m]} if m in beats else {})}
                      for m in per_method if point[m]}
    return out


def _interval(draws: np.ndarray) -> list[float]:
    return [float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))]
