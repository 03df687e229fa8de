"""The grid-to-map step as one matrix per axis equals bilinear upsampling followed by the Gaussian."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inspector.segmentation.smoothing import axis_operator, grid_to_map, smooth_maps


@pytest.mark.parametrize("height, width, size, sigma", [(28, 28, 224, 4.0), (14, 14, 224, 4.0), (20, 15, 160, 2.0),
                                                        (7, 7, 256, 0.0), (3, 5, 64, 8.0)])
def test_the_matrix_form_is_upsampling_then_smoothing(height, width, size, sigma):
    grid = torch.randn(3, height, width, generator=torch.Generator().manual_seed(height * width))
    upsampled = F.interpolate(grid.unsqueeze(1), size=(size, size), mode="bilinear", align_corners=False).squeeze(1)
    expected = smooth_maps(upsampled, sigma)
    got = grid_to_map(grid, size, sigma)
    assert got.shape == (3, size, size)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=0, atol=1e-5 * float(expected.abs().max()))


def test_the_operator_is_a_constant_of_the_grid_size_and_keeps_the_mean():
    first = axis_operator(14, 224, 4.0)
    assert first is axis_operator(14, 224, 4.0)  # built once per grid size, map size and sigma
    assert first.shape == (224, 14) and first.dtype == torch.float32
    # Interpolation and a normalized kernel with reflect padding both keep a constant grid constant.
    np.testing.assert_allclose(first.sum(1).numpy(), 1.0, atol=1e-6)
