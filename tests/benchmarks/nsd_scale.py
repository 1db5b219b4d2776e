"""A synthetic bundle of NSD subject-1 size (DESIGN.md §8), written with the project's own writer.

15,724 voxels, 982 test trials (1,000 with ``--sessions 40``), 32×768 query tokens (24,576
outputs per stage), 256-d text, five captions per trial, float16 weights (1.5 GB for two
stages), two 163,842-vertex hemispheres (``--vertices 227000`` for native surfaces), and tiny
BLIP-2 models with a 768-wide Q-Former. The data are random but consistent: each stage's weight
is low rank plus noise, the image targets are the stage-1 predictions plus noise and the text
embeddings the projected stage-2 predictions plus noise, so retrieval finds the right trial
and the benchmarks measure real work. The bundle gets its prediction cache (format version 2,
float16, written by ``brainview cache``'s code: one prediction pass per stage) unless ``--no-cache``.

    .venv/bin/python tests/benchmarks/nsd_scale.py /work/h13-data/nsd_v2 [--vertices 227000] [--sessions 40] [--no-cache]

Memory stays near the size of the float16 weights: they are generated in row blocks.
:func:`float32_rows` regenerates the float32 weights the float16 ones were rounded from, so
``float16.py`` can measure what the stored precision costs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

N_VOXELS, N_QUERY, QUERY_DIM, TEXT_DIM, RANK = 15724, 32, 768, 256, 64
TRIALS = {37: 982, 40: 1000}  # test images seen in all three repeats after 37 / 40 sessions
BLOCK = 2048  # weight rows generated at a time
ROI_NAMES = {"prf-visualrois": ["V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4"],
             "floc-faces": ["OFA", "FFA-1", "FFA-2"], "floc-bodies": ["EBA", "FBA-1"],
             "floc-places": ["OPA", "PPA", "RSC"], "floc-words": ["OWFA", "VWFA-1"]}


def factors(seed: int, stage: str):
    """The low-rank part of a stage's weight: (A (n_out, RANK), B (RANK, n_voxels)), float32; shared by
    both stages (stage 2 is a tuned copy of stage 1: the same signal, its own noise), so both
    retrieve the images."""
    rng = np.random.default_rng([seed, 1])
    a = rng.standard_normal((N_QUERY * QUERY_DIM, RANK), dtype=np.float32)
    b = rng.standard_normal((RANK, N_VOXELS), dtype=np.float32) / np.float32(np.sqrt(N_VOXELS * RANK))
    return a, b


def float32_rows(seed: int, stage: str, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a stage's weight in float32 (block-aligned noise, so any range is exact)."""
    a, b = factors(seed, stage)
    out = []
    for block in range(start // BLOCK, (stop - 1) // BLOCK + 1):
        rng = np.random.default_rng([seed, 10 + ("stage1", "stage2").index(stage), block])
        lo = block * BLOCK
        hi = min(lo + BLOCK, N_QUERY * QUERY_DIM)
        noise = rng.standard_normal((hi - lo, N_VOXELS), dtype=np.float32) * np.float32(0.3 / np.sqrt(N_VOXELS))
        rows = a[lo:hi] @ b + noise
        out.append(rows[max(start, lo) - lo:min(stop, hi) - lo])
    return np.concatenate(out)


def sphere(n: int, radius: float, center) -> tuple[np.ndarray, np.ndarray]:
    """``n`` near-uniform points on a sphere (Fibonacci lattice) triangulated by their convex hull."""
    from scipy.spatial import ConvexHull

    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    r = np.sqrt(1 - z * z)
    phi = np.pi * (3 - np.sqrt(5)) * i
    unit = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    faces = ConvexHull(unit).simplices.astype(np.int32)
    tri = unit[faces]
    outward = np.einsum("ij,ij->i", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), tri.mean(axis=1)) > 0
    faces[~outward] = faces[~outward][:, ::-1]
    return (unit * radius + np.asarray(center)).astype(np.float32), faces


def write(path: Path, *, vertices: int = 163842, sessions: int = 37, seed: int = 0, stimulus_side: int = 224,
          cache: bool = True, progress=print):
    from brainview.bundle import make_manifest, write_bundle
    from brainview.decoding.tiny_vlm import save_tiny_blip2, train_tokenizer
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    n_trials = TRIALS[sessions]
    n_out = N_QUERY * QUERY_DIM
    fmri = rng.standard_normal((n_trials, N_VOXELS), dtype=np.float32)

    progress(f"weights: 2 × ({n_out}, {N_VOXELS}) float16 in blocks of {BLOCK} rows")
    weights, predicted = {}, {}
    for stage in ("stage1", "stage2"):
        w = np.empty((n_out, N_VOXELS), dtype=np.float16)
        for start in range(0, n_out, BLOCK):
            w[start:start + BLOCK] = float32_rows(seed, stage, start, min(start + BLOCK, n_out))
        a, b = factors(seed, stage)
        pred = (fmri @ b.T) @ a.T  # the low-rank part: the noise adds little, and this costs no full GEMM
        bias = (0.05 * rng.standard_normal(n_out)).astype(np.float16)
        weights[f"{stage}.weight"], weights[f"{stage}.bias"] = w, bias
        predicted[stage] = (pred + bias.astype(np.float32)).reshape(n_trials, N_QUERY, QUERY_DIM)
    proj_w = (rng.standard_normal((TEXT_DIM, QUERY_DIM)) / np.sqrt(QUERY_DIM)).astype(np.float16)
    proj_b = np.zeros(TEXT_DIM, dtype=np.float16)
    weights["stage2.projection.weight"], weights["stage2.projection.bias"] = proj_w, proj_b

    image = predicted["stage1"] + 0.5 * predicted["stage1"].std() * rng.standard_normal(
        predicted["stage1"].shape, dtype=np.float32)
    projected = predicted["stage2"] @ proj_w.astype(np.float32).T
    projected /= np.linalg.norm(projected, axis=-1, keepdims=True)
    words = ["a", "man", "woman", "dog", "cat", "on", "the", "street", "with", "red", "train", "table", "plate",
             "of", "food", "sitting", "next", "to", "bus", "field", "giraffe", "kitchen", "surfboard", "sky"]
    captions, text, index = [], [], []
    for t in range(n_trials):
        trial_caps = []
        for c in range(5):
            trial_caps.append(" ".join(rng.choice(words, size=8)))
            e = projected[t, (t + c) % N_QUERY] + 0.02 * rng.standard_normal(TEXT_DIM)
            text.append(e / np.linalg.norm(e))
            index.append([t, c])
        captions.append(trial_caps)

    progress(f"cortex: 2 × {vertices:,} vertices")
    mesh = {}
    for hemi, x in (("lh", -75.0), ("rh", 75.0)):
        v, f = sphere(vertices, 70.0, (x, 0.0, 0.0))
        mesh[hemi] = {"inflated": v, "pial": v * 0.95, "faces": f, "sulc": np.sin(v[:, 2] / 6).astype(np.float32)}
    points = np.concatenate([mesh["lh"]["inflated"], mesh["rh"]["inflated"]])
    # voxels: patches of the posterior half, like nsdgeneral; each mapped vertex takes its nearest voxel
    posterior = np.flatnonzero(points[:, 1] < 10.0)
    centres = points[rng.choice(posterior, size=N_VOXELS, replace=False)]
    _, nearest = cKDTree(centres).query(points[posterior])
    vertex_voxel = sp.csr_matrix((np.ones(posterior.size, dtype=np.float32), (posterior, nearest)),
                                 shape=(points.shape[0], N_VOXELS))
    tree = cKDTree(centres)
    rois, names = {}, [(g, n) for g, ns in ROI_NAMES.items() for n in ns]
    for (group, name), centre in zip(names, rng.choice(N_VOXELS, size=len(names), replace=False)):
        rois[name] = {"group": group, "voxels": sorted(tree.query_ball_point(centres[centre], r=18.0))}

    progress("tiny BLIP-2 models with a 768-wide Q-Former")
    import tempfile

    corpus = [c for caps in captions[:200] for c in caps]
    with tempfile.TemporaryDirectory() as tmp:
        models = save_tiny_blip2(Path(tmp) / "models", train_tokenizer(corpus, vocab_size=300), seed=seed,
                                 n_query=N_QUERY, query_dim=QUERY_DIM, lm_hidden=64, text_dim=TEXT_DIM,
                                 num_heads=4, qformer_layers=1, lm_layers=2)
        progress("writing the bundle")
        manifest = make_manifest(name=f"NSD subj01 size (synthetic, {vertices:,} vertices, {sessions} sessions)",
                                 dataset="synthetic", subject="subj01", n_voxels=N_VOXELS, n_query=N_QUERY,
                                 query_dim=QUERY_DIM, text_dim=TEXT_DIM,
                                 vlm={"captioner": "vlm/captioner", "retrieval": "vlm/retrieval",
                                      "max_new_tokens": 12},
                                 provenance={"generator": "tests/benchmarks/nsd_scale.py", "seed": seed})
        stimuli = rng.integers(0, 256, size=(n_trials, stimulus_side, stimulus_side, 3), dtype=np.uint8)
        bundle = write_bundle(path, manifest=manifest, weights=weights, fmri=fmri, stimuli=stimuli,
                              captions=captions, trials=[{"id": f"nsd{t:05d}", "nsd_id": t} for t in range(n_trials)],
                              image_embeddings=image, text_embeddings=np.array(text, dtype=np.float32),
                              text_index=index, mesh=mesh, vertex_voxel=vertex_voxel, rois=rois,
                              vlm_folders=models, weights_dtype=np.float16, overwrite=True)
    if not cache:
        return bundle
    from brainview.decoding.prediction_cache import add_cache

    del weights, predicted, image, projected  # the cache pass reads the bundle's weights, not these
    progress("prediction cache: every trial through both stages (brainview cache)")
    bundle, check = add_cache(path)
    progress(f"prediction cache checked on {len(check.trials)} trials: largest relative difference "
             f"{check.max_error:.1e} (float16)")
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="bundle folder to write (replaced if present)")
    parser.add_argument("--vertices", type=int, default=163842, help="vertices per hemisphere (native: 227000)")
    parser.add_argument("--sessions", type=int, choices=sorted(TRIALS), default=37)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-cache", action="store_true", help="no prediction cache (a version-1 bundle)")
    args = parser.parse_args()
    start = time.perf_counter()
    bundle = write(args.out, vertices=args.vertices, sessions=args.sessions, seed=args.seed, cache=not args.no_cache,
                   progress=lambda what: print(f"{time.perf_counter() - start:6.1f} s  {what}", flush=True))
    size = sum(p.stat().st_size for p in bundle.path.rglob("*") if p.is_file())
    print(f"{time.perf_counter() - start:6.1f} s  wrote {bundle.path} ({size / 2**30:.2f} GiB, "
          f"{bundle.n_trials} trials, {bundle.n_voxels} voxels)")


if __name__ == "__main__":
    main()
