"""Fitting multivariate Gaussians to feature vectors and measuring Mahalanobis distances."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.covariance import ledoit_wolf


def fit_gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and precision matrix of ``features`` (N x D), in float64.

    The covariance is shrunk with the Ledoit-Wolf estimate, which keeps it
    invertible even when there are fewer images than dimensions.
    """
    data = np.asarray(features, dtype=np.float64)
    mean = data.mean(axis=0)
    covariance, _ = ledoit_wolf(data - mean, assume_centered=True)
    precision = np.linalg.inv(covariance)
    return mean, (precision + precision.T) / 2.0


def mahalanobis(features: torch.Tensor, mean: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """Mahalanobis distance (not squared) of each row of ``features`` (N x D)."""
    centered = features - mean
    squared = ((centered @ precision) * centered).sum(dim=1)
    return squared.clamp_min(0).sqrt()
