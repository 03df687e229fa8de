"""Fitting multivariate Gaussians to feature vectors and measuring Mahalanobis distances."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.covariance import ledoit_wolf


def fit_gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and precision matrix of ``features`` (N x D), in float64.

    The covariance is shrunk with the Ledoit-Wolf estimate, which keeps it
    invertible even when there are fewer images than dimensions. With fewer
    images than dimensions (the usual case for the deep levels, and for every
    k-fold refit of a small reference set) the same precision is computed from the
    ``N x N`` Gram matrix instead of a ``D x D`` inverse (:func:`_gram_precision`).
    """
    data = np.asarray(features, dtype=np.float64)
    mean = data.mean(axis=0)
    centered = data - mean
    if 1 < len(data) < data.shape[1] // 2:
        precision = _gram_precision(centered)
    else:
        covariance, _ = ledoit_wolf(centered, assume_centered=True)
        precision = np.linalg.inv(covariance)
    return mean, (precision + precision.T) / 2.0


def _gram_precision(centered: np.ndarray) -> np.ndarray:
    """Inverse of the Ledoit-Wolf covariance of centered ``N x D`` data, ``N < D``, in O(N^2 D + N D^2).

    The shrunk covariance is ``a I + b X^T X`` with ``a = shrinkage * mu`` and
    ``b = (1 - shrinkage) / N``; the Woodbury identity inverts it through the
    ``N x N`` matrix ``I / b + X X^T / a``. The shrinkage is the Ledoit-Wolf
    formula (as scikit-learn computes it) written with the Gram matrix ``X X^T``.
    """
    count, dims = centered.shape
    gram = centered @ centered.T
    trace = float(np.trace(gram)) / count            # trace of the empirical covariance
    mu = trace / dims
    delta_ = float(np.sum(gram ** 2)) / count ** 2    # squared Frobenius norm of the covariance
    beta_ = float(np.sum(np.diag(gram) ** 2))         # sum of squared sample norms squared
    beta = (beta_ / count - delta_) / (dims * count)
    delta = (delta_ - 2.0 * mu * trace + dims * mu ** 2) / dims
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    a, b = shrinkage * mu, (1.0 - shrinkage) / count
    if a <= 0:
        covariance, _ = ledoit_wolf(centered, assume_centered=True)
        return np.linalg.inv(covariance)
    inner = np.eye(count) / b + gram / a
    solved = np.linalg.solve(inner, centered)          # (N, D)
    return np.eye(dims) / a - (centered.T @ solved) / a ** 2


def mahalanobis(features: torch.Tensor, mean: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """Mahalanobis distance (not squared) of each row of ``features`` (N x D)."""
    centered = features - mean
    squared = ((centered @ precision) * centered).sum(dim=1)
    return squared.clamp_min(0).sqrt()
