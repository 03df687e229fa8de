"""Gaussian smoothing of anomaly maps and grid-to-image upsampling (one implementation for every map)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SMOOTH_SIGMA = 4.0
"""Default smoothing of patch maps, in input pixels."""


def smooth_maps(maps: torch.Tensor, sigma: float = SMOOTH_SIGMA) -> torch.Tensor:
    """Gaussian-smooth ``(N, H, W)`` maps with a separable, reflect-padded kernel, on their own device.

    ``sigma`` is in pixels; 0 or less returns the maps unchanged. The kernel
    reaches 3 sigma, clipped to what reflect padding allows on small maps.
    """
    if sigma <= 0:
        return maps
    radius = max(1, math.ceil(3.0 * sigma))
    radius = min(radius, maps.shape[-1] - 1, maps.shape[-2] - 1)
    taps = torch.arange(-radius, radius + 1, device=maps.device, dtype=maps.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = maps.unsqueeze(1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return x.squeeze(1)


def grid_to_map(grid: torch.Tensor, image_size: int, sigma: float = SMOOTH_SIGMA) -> torch.Tensor:
    """Upsample ``(N, h, w)`` grids bilinearly to ``image_size`` squared and Gaussian-smooth them."""
    full = F.interpolate(grid.unsqueeze(1), size=(image_size, image_size), mode="bilinear",
                         align_corners=False).squeeze(1)
    return smooth_maps(full, sigma)
