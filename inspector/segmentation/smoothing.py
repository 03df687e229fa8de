"""Gaussian smoothing of anomaly maps and grid-to-image upsampling (one implementation for every map)."""

from __future__ import annotations

import math

import numpy as np
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
    """Upsample ``(N, h, w)`` grids bilinearly to ``image_size`` squared and Gaussian-smooth them.

    Both steps are linear and separable, so they are applied as one ``(image_size, h)`` matrix
    per axis, ``A_h @ grid @ A_w^T`` (:func:`axis_operator`): the same map as
    :func:`smooth_maps` of ``F.interpolate(..., mode="bilinear")`` up to rounding, in two small
    matrix products instead of an upsampling and two convolutions of the full-size map.
    """
    rows = axis_operator(grid.shape[-2], image_size, sigma, grid.device, grid.dtype)
    cols = rows if grid.shape[-1] == grid.shape[-2] else axis_operator(grid.shape[-1], image_size, sigma,
                                                                       grid.device, grid.dtype)
    return torch.matmul(torch.matmul(rows, grid), cols.T)


_OPERATORS: dict[tuple, torch.Tensor] = {}


def axis_operator(cells: int, size: int, sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """``(size, cells)``: 1-D linear upsampling (``align_corners=False``, as bilinear is per axis)
    of ``cells`` values to ``size``, then the reflect-padded Gaussian of :func:`smooth_maps`.

    Built with numpy, so that building it while a graph is traced for export leaves only a
    constant in the graph.
    """
    key = (int(cells), int(size), float(sigma), str(device), dtype)
    cached = _OPERATORS.get(key)
    if cached is None:
        cached = _OPERATORS[key] = torch.from_numpy(_axis_matrix(int(cells), int(size), float(sigma))).to(
            device=device, dtype=dtype).contiguous()
    return cached


def _axis_matrix(cells: int, size: int, sigma: float) -> np.ndarray:
    # Linear interpolation as torch computes it: source = (i + 0.5) * cells / size - 0.5, clamped at 0.
    source = np.maximum((np.arange(size) + 0.5) * (cells / size) - 0.5, 0.0)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, cells - 1)
    weight = source - low
    matrix = np.zeros((size, cells))
    np.add.at(matrix, (np.arange(size), low), 1.0 - weight)
    np.add.at(matrix, (np.arange(size), high), weight)
    if sigma > 0:
        radius = min(max(1, math.ceil(3.0 * sigma)), size - 1)
        taps = np.arange(-radius, radius + 1)
        kernel = np.exp(-0.5 * (taps / sigma) ** 2)
        kernel /= kernel.sum()
        padded = np.pad(matrix, ((radius, radius), (0, 0)), mode="reflect")
        matrix = sum(kernel[t] * padded[t:t + size] for t in range(len(kernel)))
    return matrix
