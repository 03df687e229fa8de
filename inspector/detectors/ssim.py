"""Structural similarity (SSIM) as a per-pixel map, in torch and differentiable.

Wang, Bovik, Sheikh and Simoncelli (2004), "Image Quality Assessment: From Error
Visibility to Structural Similarity": local means, variances and the covariance
of two images are taken under a Gaussian window, and

    SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))

with ``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2`` for the data range ``L``. The
inputs are reflect-padded so the map has the size of the images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

K1 = 0.01
K2 = 0.03


def gaussian_window(size: int = 11, sigma: float = 1.5, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A normalized 1-D Gaussian window of length ``size`` (the 2-D window is its outer product).

    Raises:
        ValueError: for an even or non-positive size, or a non-positive sigma.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"the SSIM window size must be odd and positive, got {size}")
    if sigma <= 0:
        raise ValueError(f"the SSIM window sigma must be positive, got {sigma}")
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    line = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    return line / line.sum()


def local_mean(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Gaussian-weighted local mean per channel: a row pass and a column pass (separable)."""
    channels, size = x.shape[1], window.shape[0]
    pad = size // 2
    x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, window.view(1, 1, 1, size).expand(channels, 1, 1, size), groups=channels)
    return F.conv2d(x, window.view(1, 1, size, 1).expand(channels, 1, size, 1), groups=channels)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5,
             data_range: float = 1.0) -> torch.Tensor:
    """Per-pixel, per-channel SSIM of two image batches.

    Args:
        x, y: Tensors of shape ``(N, C, H, W)``; ``H`` and ``W`` must exceed ``window_size // 2``.
        window_size: Side of the Gaussian window (odd).
        sigma: Standard deviation of the Gaussian window.
        data_range: Value range of the images (1.0 for images in [0, 1]).

    Returns:
        SSIM of shape ``(N, C, H, W)``; 1 where the images agree, lower elsewhere.

    Raises:
        ValueError: for mismatched shapes.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"SSIM needs two (N, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    window = gaussian_window(window_size, sigma, x.device, x.dtype)
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    # One grouped convolution for all five local moments.
    moments = local_mean(torch.cat([x, y, x * x, y * y, x * y], dim=1), window)
    mu_x, mu_y, xx, yy, xy = moments.chunk(5, dim=1)
    var_x = xx - mu_x * mu_x
    var_y = yy - mu_y * mu_y
    cov = xy - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return numerator / denominator


def dssim_map(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5,
              data_range: float = 1.0) -> torch.Tensor:
    """Structural dissimilarity ``1 - SSIM``, averaged over channels: shape ``(N, H, W)``."""
    return 1.0 - ssim_map(x, y, window_size, sigma, data_range).mean(dim=1)
