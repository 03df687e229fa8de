"""The Gaussian fit: the Gram-matrix route gives the same precision as Ledoit-Wolf + a D x D inverse."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import ledoit_wolf

from inspector.detectors.gaussian_fit import fit_gaussian


def _reference_precision(data: np.ndarray) -> np.ndarray:
    centered = data - data.mean(0)
    covariance, _ = ledoit_wolf(centered, assume_centered=True)
    return np.linalg.inv(covariance)


@pytest.mark.parametrize("count, dims", [(12, 320), (30, 1280), (39, 112), (200, 80)])
def test_precision_equals_ledoit_wolf_inverse(count, dims):
    rng = np.random.default_rng(count)
    # Correlated features with uneven scales, like pooled backbone features.
    data = rng.normal(size=(count, dims)) * rng.uniform(0.1, 3.0, size=dims)
    data += rng.normal(size=(count, 3)) @ rng.normal(size=(3, dims))
    mean, precision = fit_gaussian(data)
    expected = _reference_precision(data)
    np.testing.assert_allclose(mean, data.mean(0))
    np.testing.assert_allclose(precision, (expected + expected.T) / 2, rtol=0, atol=1e-9 * np.abs(expected).max())
    np.testing.assert_array_equal(precision, precision.T)


def test_distances_of_a_shifted_sample_are_larger():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(20, 200))
    mean, precision = fit_gaussian(data)
    inside, outside = rng.normal(size=200), rng.normal(size=200) + 2.0
    assert (outside - mean) @ precision @ (outside - mean) > 2 * (inside - mean) @ precision @ (inside - mean)
