"""The prediction cache (bundle format version 2): what opening and ranking cost with it, against the
pass over every trial it replaces (the reference, measured in the same run), and what its float16
storage changes in the tokens and the image ranks.

    .venv/bin/python tests/benchmarks/prediction_cache.py BUNDLE

BUNDLE must have a cache (``nsd_scale.py`` writes one, ``brainview cache`` adds one). Prints times,
the ratio cached / full pass, the relative token difference over every trial and how many image
ranks differ between the cached (float16) and freshly predicted (float32) tokens. Asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402


def main() -> None:
    from brainview.bundle import open_bundle
    from brainview.decoding.decoder import Decoder
    from brainview.decoding.prediction_cache import iter_predictions, open_pass, ranks, relative_errors
    from brainview.state.session import finish

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    args = parser.parse_args()
    start = time.perf_counter()
    bundle = open_bundle(args.bundle)
    opened = time.perf_counter() - start
    if not bundle.predictions:
        raise SystemExit(f"{args.bundle} has no prediction cache: run `brainview cache {args.bundle}` first")

    cached = Decoder(bundle)
    start = time.perf_counter()
    check = open_pass(cached)
    opening = time.perf_counter() - start
    if check.problem:
        raise SystemExit(f"the cache does not check: {check.problem}")
    start = time.perf_counter()
    with_cache = finish(iter_predictions(cached))
    ranking = time.perf_counter() - start

    fresh = Decoder(bundle)  # the reference: every trial through the weights, as a version-1 bundle does
    start = time.perf_counter()
    without = finish(iter_predictions(fresh))
    full = time.perf_counter() - start

    print(f"bundle: {args.bundle} ({bundle.n_trials} trials, {bundle.n_voxels} voxels, "
          f"{bundle.n_query}×{bundle.query_dim} tokens, cache {bundle.manifest['predictions']['dtype']})")
    print(f"{'validate (open_bundle):':<52}{opened:7.2f} s")
    print(f"{'opening pass (first trial + sample + ROIs):':<52}{opening:7.2f} s   "
          f"(checked {len(check.trials)} trials, largest difference {check.max_error:.1e})")
    print(f"{'every rank from the cache:':<52}{ranking:7.2f} s")
    print(f"{'every rank from a pass over the weights (ref):':<52}{full:7.2f} s")
    print(f"{'cache / pass:':<52}{ranking / full:7.3f}")
    for stage in bundle.stages:
        errors = relative_errors(with_cache.tokens[stage], without.tokens[stage])
        a, b = ranks(with_cache.similarity[stage]), ranks(without.similarity[stage])
        changed = np.flatnonzero(a != b)
        top1 = (float((a == 1).mean()), float((b == 1).mean()))
        print(f"{stage}: token difference median {np.median(errors):.1e}, max {errors.max():.1e}; image ranks "
              f"changed for {changed.size} of {bundle.n_trials} trials"
              + (f" (largest change {int(np.abs(a - b).max())})" if changed.size else "")
              + f"; top-1 of all {bundle.n_trials}: cache {top1[0]:.3f}, pass {top1[1]:.3f}")
    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
