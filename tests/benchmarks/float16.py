"""What storing the brain model in float16 costs (DESIGN.md §8): predictions from the bundle's float16
weights against the float32 weights they were rounded from, on a bundle written by ``nsd_scale.py``.

The float32 weights are regenerated block by block from the bundle's seed (never held whole), so
memory stays near one float16 copy. Reports the tokens' relative error, the cosine between the two
predictions, and how many test trials change their retrieval rank (982-way image retrieval), with
the time of each prediction (the float32 one is the reference).

    .venv/bin/python tests/benchmarks/float16.py /work/h13-data/nsd_subj01 [--stage stage1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--stage", default="stage1", choices=("stage1", "stage2"))
    args = parser.parse_args()

    from brainview.bundle import open_bundle
    from brainview.decoding.brain_model import BrainModel
    from brainview.decoding.retrieval import image_scores
    from brainview.state.session import ranks
    from tests.benchmarks import nsd_scale

    bundle = open_bundle(args.bundle)
    seed = bundle.manifest["provenance"].get("seed")
    if bundle.manifest["provenance"].get("generator") != "tests/benchmarks/nsd_scale.py" or seed is None:
        sys.exit("float16.py: this bundle was not written by nsd_scale.py, so its float32 weights are unknown")
    model = BrainModel.from_bundle(bundle)
    x = np.asarray(bundle.fmri, dtype=np.float32)
    bias = np.asarray(bundle.weights[f"{args.stage}.bias"], dtype=np.float32)

    start = time.perf_counter()
    half = model.predict(x, args.stage).reshape(len(x), -1)
    t_half = time.perf_counter() - start

    start = time.perf_counter()
    full = np.empty_like(half)
    n_out = half.shape[1]
    for lo in range(0, n_out, nsd_scale.BLOCK):
        hi = min(lo + nsd_scale.BLOCK, n_out)
        full[:, lo:hi] = x @ nsd_scale.float32_rows(seed, args.stage, lo, hi).T
    full += bias  # the bias is stored in float16 too: compare the weights' rounding alone
    t_full = time.perf_counter() - start

    diff = np.linalg.norm(half - full, axis=1) / np.linalg.norm(full, axis=1)
    cosine = np.einsum("ij,ij->i", half, full) / (np.linalg.norm(half, axis=1) * np.linalg.norm(full, axis=1))
    targets = bundle.image_embeddings
    shape = (len(x), bundle.n_query, bundle.query_dim)
    rank_half = ranks(image_scores(half.reshape(shape), targets))
    rank_full = ranks(image_scores(full.reshape(shape), targets))
    print(f"bundle: {bundle.path} ({bundle.n_trials} trials, {bundle.n_voxels} voxels, {n_out} outputs), {args.stage}")
    print(f"float16 weights, block-wise float32 GEMM: {t_half:7.2f} s")
    print(f"float32 weights (reference, regenerated): {t_full:7.2f} s   (float16 path {t_half / t_full:.2f}×)")
    print(f"relative error of the tokens, per trial:  median {np.median(diff):.2e}, max {diff.max():.2e}")
    print(f"cosine(float16, float32 prediction):      min {cosine.min():.7f}")
    print(f"image retrieval top-1 ({len(x)}-way):        float16 {np.mean(rank_half == 1):.4f}, "
          f"float32 {np.mean(rank_full == 1):.4f}")
    print(f"trials whose image rank changed:          {int((rank_half != rank_full).sum())} of {len(x)} "
          f"(max change {int(np.abs(rank_half - rank_full).max())})")


if __name__ == "__main__":
    main()
