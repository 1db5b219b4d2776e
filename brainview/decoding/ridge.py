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
INPUT_BLOCK = 2048  # voxels (or rows) brought to the solver's precision at once for the Gram matrix


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

    def fit(self, X, Y, X_val, Y_val, write_weight=None, overwrite: bool = False) -> "StageOneRidge":
        """``write_weight``, ``overwrite``: see :func:`fit_ridge` (with ``write_weight``, ``predict`` is unavailable)."""
        Y = np.asarray(Y)
        self.token_shape_ = Y.shape[1:] if Y.ndim == 3 else None
        n_out = int(np.prod(Y.shape[1:]))
        device = resolve_device(self.device)
        dtype = self.dtype or (torch.float64 if device.type == "cpu" else torch.float32)
        fit = fit_ridge(X, Y.reshape(len(Y), n_out), X_val, np.asarray(Y_val).reshape(len(Y_val), n_out),
                        self.alphas, self._groups(n_out), device, dtype, write_weight, overwrite=overwrite)
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


def _float32(array, device: torch.device, overwrite: bool) -> torch.Tensor:
    """``array`` as a float32 tensor: the caller's own memory when ``overwrite`` allows it, else a copy."""
    if overwrite:
        return torch.as_tensor(np.asarray(array, dtype=np.float32), device=device)
    return torch.tensor(np.asarray(array), dtype=torch.float32, device=device)


def _slices(n: int, size: int) -> list[slice]:
    return [slice(a, min(a + size, n)) for a in range(0, n, size)]


def fit_ridge(X, Y, X_val, Y_val, alphas, groups: np.ndarray, device: torch.device,
              dtype: torch.dtype = torch.float64, write_weight=None, block: int = OUTPUT_BLOCK,
              overwrite: bool = False) -> RidgeFit:
    """Fit ridge for every alpha from one Gram matrix, pick alpha per group on validation.

    With G the Gram matrix (kernel ``Xc Xcᵀ`` when there are fewer trials than voxels, else
    ``Xcᵀ Xc``), each alpha costs one Cholesky factorization of ``G + αI`` and a solve against
    the validation features only; the full solve against all outputs happens once, per chosen
    alpha, for its outputs. Everything is matrix-matrix work (fast on CPU and GPU), unlike an
    eigendecomposition, whose tridiagonal reduction dominated on CPUs.

    Precision and memory (NSD subject 1: 7,973 × 15,724 → 24,576 outputs): X and Y are held once
    each in float32, centred in place; the targets are then overwritten by the solve's
    coefficients. Everything the solve's accuracy depends on (the Gram matrix, its factors, the
    solves, the validation scores) is computed in ``dtype``, bringing ``block`` columns of the
    float32 arrays (``INPUT_BLOCK`` voxels or rows for the Gram matrix) to ``dtype`` at a time; the weights, float32 in the end, are made from the
    float32 coefficients in float32. ``overwrite=True`` lets the centring happen in the caller's
    float32 X and Y (they are modified) instead of copies. ``write_weight(start, rows)`` receives
    the weights one float32 block of rows at a time (then ``RidgeFit.weight`` is None and the full
    matrix is never in memory); otherwise they are gathered into one array.
    """
    if min(alphas) <= 0:
        raise ValueError("ridge alphas must be positive")
    Xc, Yc = _float32(X, device, overwrite), _float32(Y, device, overwrite)
    x_mean, y_mean = Xc.mean(0, dtype=dtype), Yc.mean(0, dtype=dtype)
    Xc -= x_mean.float()
    Yc -= y_mean.float()
    (n, p), n_out = Xc.shape, Yc.shape[1]
    outputs = _slices(n_out, block)
    kernel = n <= p
    gram = torch.zeros((n, n) if kernel else (p, p), dtype=dtype, device=device)
    for b in _slices(p if kernel else n, INPUT_BLOCK):  # Xc Xcᵀ summed over voxel blocks, Xcᵀ Xc over row blocks
        part = (Xc[:, b] if kernel else Xc[b]).to(dtype)
        gram += part @ part.T if kernel else part.T @ part
    del part
    if kernel:
        rhs = Yc  # (r, n_out), float32
    else:  # Xcᵀ Yc, (p, n_out), made block by block
        rhs = torch.empty(p, n_out, dtype=torch.float32, device=device)
        for b in outputs:
            column = torch.zeros(p, b.stop - b.start, dtype=dtype, device=device)
            for r in _slices(n, INPUT_BLOCK):
                column += Xc[r].to(dtype).T @ Yc[r, b].to(dtype)
            rhs[:, b] = column.float()
        del Yc
    Xv = torch.tensor(np.asarray(X_val), dtype=dtype, device=device) - x_mean
    if kernel:  # Xv Xcᵀ, (n_val, r)
        features_val = torch.zeros(len(Xv), n, dtype=dtype, device=device)
        for b in _slices(p, INPUT_BLOCK):
            features_val += Xv[:, b] @ Xc[:, b].to(dtype).T
    else:
        features_val = Xv
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
        for b in outputs:
            mse[i, b] = ((val_map @ rhs[:, b].to(dtype) - residual_val[:, b]) ** 2).mean(0)
    del features_val, residual_val, val_map
    groups_t = torch.as_tensor(groups, device=device)
    n_groups = int(groups.max()) + 1
    group_mse = torch.zeros(len(alphas), n_groups, dtype=dtype, device=device).index_add_(1, groups_t, mse)
    best = group_mse.argmin(0)[groups_t]  # alpha index per output
    for i in torch.unique(best).tolist():  # the coefficients replace the targets in place
        chol = factor(alphas[i])
        columns = torch.nonzero(best == i).flatten()
        for start in range(0, len(columns), block):
            cols = columns[start:start + block]
            rhs[:, cols] = torch.cholesky_solve(rhs[:, cols].to(dtype), chol).float()
        del chol
    del gram
    weight = None if write_weight else np.empty((n_out, p), dtype=np.float32)
    bias = np.empty(n_out, dtype=np.float32)
    for b in outputs:
        w = (Xc.T @ rhs[:, b]).T if kernel else rhs[:, b].T  # (outputs of the block, p), float32
        bias[b] = (y_mean[b] - w.to(dtype) @ x_mean).float().cpu().numpy()
        w = w.cpu().numpy()
        if write_weight:
            write_weight(b.start, w)
        else:
            weight[b] = w
    chosen = torch.as_tensor(alphas, dtype=dtype, device=device)[best]
    return RidgeFit(weight, bias, chosen.cpu().numpy(), mse.cpu().numpy())
