"""Stage-1 ridge with a 7-value alpha sweep: brainview's solver against the paper's way and himalaya.

The paper fits one scikit-learn ``Ridge`` per query token and alpha (32 × 7 fits). brainview
does one eigendecomposition for the whole sweep. Prints times as ratios to the scikit-learn loop
measured in the same process, and the largest prediction difference at equal alphas.

    .venv/bin/python tests/benchmarks/ridge.py            # n=2000, 4000 voxels, 32×64 outputs
    .venv/bin/python tests/benchmarks/ridge.py --nsd      # 8859 × 15724 → 32×768 (slow on a CPU)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

ALPHAS = (1e2, 1e3, 3e3, 1e4, 3e4, 1e5, 1e6)


def make_data(n, p, n_query, dim, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n + n // 5, 64)).astype(np.float32)
    X = latent @ rng.standard_normal((64, p)).astype(np.float32) + 3 * rng.standard_normal((len(latent), p)).astype(np.float32)
    Y = latent @ rng.standard_normal((64, n_query * dim)).astype(np.float32) + rng.standard_normal((len(latent), n_query * dim)).astype(np.float32)
    return X[:n], Y[:n].reshape(n, n_query, dim), X[n:], Y[n:].reshape(-1, n_query, dim)


def sklearn_per_token(X, Y, Xv, Yv):
    """The paper's loop: one Ridge per token and alpha, alpha per token by validation MSE."""
    from sklearn.linear_model import Ridge

    best = []
    for q in range(Y.shape[1]):
        scores = []
        for alpha in ALPHAS:
            model = Ridge(alpha=alpha).fit(X, Y[:, q])
            scores.append((((model.predict(Xv) - Yv[:, q]) ** 2).mean(), alpha, model))
        best.append(min(scores, key=lambda s: s[0]))
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nsd", action="store_true", help="NSD size: 8859 × 15724 → 32×768")
    parser.add_argument("--skip-sklearn-tokens", type=int, default=0,
                        help="time scikit-learn on this many tokens only and extrapolate (0: all)")
    args = parser.parse_args()
    n, p, n_query, dim = (8859, 15724, 32, 768) if args.nsd else (2000, 4000, 32, 64)
    X, Y, Xv, Yv = make_data(n, p, n_query, dim)
    print(f"data: n={n} voxels={p} outputs={n_query}x{dim} alphas={len(ALPHAS)} torch threads={torch.get_num_threads()}")

    from brainview.decoding.ridge import StageOneRidge

    start = time.perf_counter()
    ours = StageOneRidge(alphas=ALPHAS, alpha_per="token", device="auto").fit(X, Y, Xv, Yv)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    ours_out = StageOneRidge(alphas=ALPHAS, alpha_per="output", device="auto").fit(X, Y, Xv, Yv)
    t_ours_out = time.perf_counter() - start

    tokens = args.skip_sklearn_tokens or n_query
    start = time.perf_counter()
    sk = sklearn_per_token(X, Y[:, :tokens], Xv, Yv[:, :tokens])
    t_sk = (time.perf_counter() - start) * n_query / tokens

    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import KernelRidgeCV

    set_backend("torch")
    X_all, Y_all = np.concatenate([X, Xv]), np.concatenate([Y, Yv]).reshape(n + len(Xv), -1)
    one_split = [(np.arange(n), np.arange(n, n + len(Xv)))]  # the same train/validation split as ours
    start = time.perf_counter()
    KernelRidgeCV(kernel="linear", alphas=np.array(ALPHAS), cv=one_split).fit(X_all, Y_all)
    t_him = time.perf_counter() - start

    diff = max(np.abs(ours.predict(Xv)[:, q] - sk[q][2].predict(Xv)).max() for q in range(tokens))
    scale = np.abs(Yv).max()
    val_mse = {name: float(((m.predict(Xv) - Yv) ** 2).mean()) for name, m in (("token", ours), ("output", ours_out))}
    print(f"scikit-learn per-token loop : {t_sk:8.2f} s   ratio 1.0"
          + (f" (extrapolated from {tokens} tokens)" if tokens < n_query else ""))
    print(f"brainview, alpha per token  : {t_ours:8.2f} s   {t_sk / t_ours:6.1f}x faster")
    print(f"brainview, alpha per output : {t_ours_out:8.2f} s   {t_sk / t_ours_out:6.1f}x faster")
    print(f"himalaya KernelRidgeCV      : {t_him:8.2f} s   {t_sk / t_him:6.1f}x faster (same split, alpha per output)")
    print(f"largest prediction difference vs scikit-learn at the same alphas: {diff:.2e} "
          f"(relative to max |y| {diff / scale:.2e})")
    print(f"same alphas chosen as scikit-learn: "
          f"{all(ours.alpha_[q * dim] == sk[q][1] for q in range(tokens))}")
    print(f"validation MSE: alpha per token {val_mse['token']:.4f}, per output {val_mse['output']:.4f} "
          f"(in-sample for the choice; it shows how much per-output freedom buys)")


if __name__ == "__main__":
    main()
