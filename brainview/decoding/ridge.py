"""Stage 1: ridge regression from voxels to flattened Q-Former query tokens.

One Gram matrix serves every alpha of the sweep (kernel form when there are fewer trials than
voxels, primal form otherwise) and each alpha is scored on validation through a small solve,
so a 7-value sweep over 32×768 outputs costs about two full solves instead of the paper's
32 × 7 scikit-learn fits. It runs in torch on CPU or GPU and
matches scikit-learn's ``Ridge(alpha, fit_intercept=True)`` at the chosen alpha.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from brainview.decoding.device import resolve_device

DEFAULT_ALPHAS = (1e2, 1e3, 3e3, 1e4, 3e4, 1e5, 1e6)
ALPHA_GRANULARITIES = ("global", "token", "output")
OUTPUT_BLOCK = 2048  # outputs brought to the solver's precision at once


@dataclass
class RidgeFit:
    """Weights in the bundle layout: ``weight`` (n_out, n_voxels), ``bias`` (n_out,)."""

    weight: np.ndarray | None  # None when the blocks were handed to ``write_weight``
    bias: np.ndarray
    alpha: np.ndarray  # chosen alpha per output
    validation_mse: np.ndarray  # (n_alphas, n_out) mean squared error on the validation set


class StageOneRidge:
    """Ridge from fMRI patterns to query tokens, alpha chosen on a validation split.

    ``alpha_per`` sets how finely alpha is chosen:

    - ``"token"`` (default): one alpha per query token, chosen by the validation MSE pooled over
      its channels. This is the paper's granularity (one scikit-learn ``Ridge`` per token), and
      the pooled score is less noisy than a per-channel one: on the benchmark's data
      (``tests/benchmarks/ridge.py``) per-output choice reached the same validation MSE
      (1.2346 both), so the extra freedom buys nothing there while it is scored on the very
      split it was chosen on.
    - ``"output"``: one alpha per output channel (himalaya's default behaviour).
    - ``"global"``: one alpha for everything.

    ``fit(X, Y, X_val, Y_val)`` with Y of shape (n, n_query, query_dim) or (n, n_out);
    ``predict(X)`` returns (n, n_query, query_dim) when fitted on 3-D targets.
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, alpha_per: str = "token", device: str = "auto",
                 dtype: torch.dtype | None = None):
        if alpha_per not in ALPHA_GRANULARITIES:
            raise ValueError(f"alpha_per must be one of {ALPHA_GRANULARITIES}, got {alpha_per!r}")
        self.alphas = tuple(float(a) for a in alphas)
        self.alpha_per = alpha_per
        self.device = device
        self.dtype = dtype

    def fit(self, X, Y, X_val, Y_val, write_weight=None) -> "StageOneRidge":
        """``write_weight(start, rows)``: see :func:`fit_ridge`; then ``weight_`` is None and ``predict`` unavailable."""
        Y = np.asarray(Y)
        self.token_shape_ = Y.shape[1:] if Y.ndim == 3 else None
        n_out = int(np.prod(Y.shape[1:]))
        device = resolve_device(self.device)
        dtype = self.dtype or (torch.float64 if device.type == "cpu" else torch.float32)
        fit = fit_ridge(X, Y.reshape(len(Y), n_out), X_val, np.asarray(Y_val).reshape(len(Y_val), n_out),
                        self.alphas, self._groups(n_out), device, dtype, write_weight)
        self.weight_, self.bias_, self.alpha_, self.validation_mse_ = (
            fit.weight, fit.bias, fit.alpha, fit.validation_mse)
        return self

    def predict(self, X) -> np.ndarray:
        out = np.asarray(X, dtype=np.float32) @ self.weight_.T + self.bias_
        return out.reshape(len(out), *self.token_shape_) if self.token_shape_ else out

    def _groups(self, n_out: int) -> np.ndarray:
        """Group id per output; outputs of one group share their alpha."""
        if self.alpha_per == "global":
            return np.zeros(n_out, dtype=np.int64)
        if self.alpha_per == "output" or self.token_shape_ is None:
            return np.arange(n_out)
        return np.repeat(np.arange(self.token_shape_[0]), self.token_shape_[1])


def fit_ridge(X, Y, X_val, Y_val, alphas, groups: np.ndarray, device: torch.device,
              dtype: torch.dtype = torch.float64, write_weight=None, block: int = OUTPUT_BLOCK) -> RidgeFit:
    """Fit ridge for every alpha from one Gram matrix, pick alpha per group on validation.

    With G the Gram matrix (kernel ``Xc Xcᵀ`` when there are fewer trials than voxels, else
    ``Xcᵀ Xc``), each alpha costs one Cholesky factorization of ``G + αI`` and a solve against
    the validation features only; the full solve against all outputs happens once, per chosen
    alpha, for its outputs. Everything is matrix-matrix work (fast on CPU and GPU), unlike an
    eigendecomposition, whose tridiagonal reduction dominated on CPUs.

    Memory (NSD subject 1: 7,973 × 15,724 → 24,576 outputs): X, the Gram matrix and its factor are
    held in ``dtype`` (the solve's precision); the targets are held once in float32, centred in
    place and overwritten by the dual coefficients, and are brought to ``dtype`` one block of
    ``block`` outputs at a time. The weights are made block by block; ``write_weight(start, w)``
    receives each float32 block of rows (then ``RidgeFit.weight`` is None and the full matrix is
    never in memory), otherwise they are gathered into one float32 array.
    """
    if min(alphas) <= 0:
        raise ValueError("ridge alphas must be positive")
    Xc = torch.tensor(np.asarray(X), dtype=dtype, device=device)
    x_mean = Xc.mean(0)
    Xc -= x_mean
    Yc = torch.tensor(np.asarray(Y), dtype=torch.float32, device=device)
    y_mean = Yc.mean(0, dtype=dtype)
    Yc -= y_mean.float()
    n_out = Yc.shape[1]
    blocks = [slice(a, min(a + block, n_out)) for a in range(0, n_out, block)]
    kernel = Xc.shape[0] <= Xc.shape[1]
    gram = Xc @ Xc.T if kernel else Xc.T @ Xc
    if kernel:
        rhs = Yc  # (r, n_out), float32
    else:  # Xcᵀ Yc, (p, n_out), made block by block
        rhs = torch.empty(Xc.shape[1], n_out, dtype=torch.float32, device=device)
        for b in blocks:
            rhs[:, b] = (Xc.T @ Yc[:, b].to(dtype)).float()
        del Yc
    Xv = torch.tensor(np.asarray(X_val), dtype=dtype, device=device) - x_mean
    features_val = Xv @ Xc.T if kernel else Xv  # (n_val, r)
    del Xv
    residual_val = torch.tensor(np.asarray(Y_val), dtype=dtype, device=device) - y_mean
    diagonal = gram.diagonal().clone()

    def factor(alpha: float) -> torch.Tensor:
        gram.diagonal().copy_(diagonal + alpha)  # G + αI without an identity matrix
        try:
            return torch.linalg.cholesky(gram)
        finally:
            gram.diagonal().copy_(diagonal)

    mse = torch.empty(len(alphas), n_out, dtype=dtype, device=device)
    for i, alpha in enumerate(alphas):
        val_map = torch.cholesky_solve(features_val.T, factor(alpha)).T  # F (G+αI)⁻¹, (n_val, r)
        for b in blocks:
            mse[i, b] = ((val_map @ rhs[:, b].to(dtype) - residual_val[:, b]) ** 2).mean(0)
    del features_val, residual_val
    groups_t = torch.as_tensor(groups, device=device)
    n_groups = int(groups.max()) + 1
    group_mse = torch.zeros(len(alphas), n_groups, dtype=dtype, device=device).index_add_(1, groups_t, mse)
    best = group_mse.argmin(0)[groups_t]  # alpha index per output
    for i in torch.unique(best).tolist():  # dual (or primal) coefficients replace the targets in place
        chol = factor(alphas[i])
        columns = torch.nonzero(best == i).flatten()
        for start in range(0, len(columns), block):
            cols = columns[start:start + block]
            rhs[:, cols] = torch.cholesky_solve(rhs[:, cols].to(dtype), chol).float()
        del chol
    del gram
    weight = None if write_weight else np.empty((n_out, Xc.shape[1]), dtype=np.float32)
    bias = np.empty(n_out, dtype=np.float32)
    for b in blocks:
        coef = rhs[:, b].to(dtype)
        w = (Xc.T @ coef if kernel else coef).T  # (outputs of the block, p)
        bias[b] = (y_mean[b] - w @ x_mean).float().cpu().numpy()
        w = w.float().cpu().numpy()
        if write_weight:
            write_weight(b.start, w)
        else:
            weight[b] = w
    chosen = torch.as_tensor(alphas, dtype=dtype, device=device)[best]
    return RidgeFit(weight, bias, chosen.cpu().numpy(), mse.cpu().numpy())
