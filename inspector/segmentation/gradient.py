"""Gradient projection maps: where must an image change to look normal to the detector?

Dehaene, Frigo, Combrexelle and Eline (ICLR 2020), "Iterative energy-based
projection on a normal data manifold for anomaly localization", adapted to the
Gaussian detector: starting from the input ``x0``, descend the energy

    E(x) = D(x) / c + lam * ||x - x0||_1,

where ``D`` is the detector's differentiable Mahalanobis score and
``c = max |grad D(x0)|`` (per image, fixed for the whole descent) makes
``alpha`` and ``lam`` independent of the score's units, of the backbone and of
the image size. Each step is ``x <- x - alpha * w * grad E``, with the L1 term
applied as its proximal operator (soft-thresholding towards ``x0``), so pixels
that need no change stay exactly at ``x0`` instead of flickering around it;
``w`` is an optional per-pixel weight (the paper weights by the reconstruction
error; here the normalized fast map may be passed). The map is
``sum over channels |x_T - x0|``, Gaussian-smoothed like the fast map.

Defaults (measured on the synthetic set, see the report in
``benchmarks/segmentation_speed.py``): DEFAULTS_NOTE
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from inspector.core.progress import Progress
from inspector.detectors.base import Detector
from inspector.segmentation.patch_map import SMOOTH_SIGMA, smooth_maps

DEFAULT_ALPHA = 0.05
DEFAULT_LAMBDA = 0.05
DEFAULT_ITERATIONS = 10
BATCH_SIZE = 4


def gradient_map(detector: Detector, images: Sequence[np.ndarray], *, alpha: float = DEFAULT_ALPHA,
                 lam: float = DEFAULT_LAMBDA, iterations: int = DEFAULT_ITERATIONS,
                 weight_maps: np.ndarray | None = None, progress: Progress | None = None,
                 sigma: float = SMOOTH_SIGMA, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Raw gradient-projection maps of RGB uint8 images, on the detector's device.

    Args:
        detector: A fitted detector with :meth:`Detector.differentiable_score`.
        images: ``HxWx3`` uint8 RGB frames (any size; resized like for scoring).
        alpha: Step size in network-input units (for Lite: [-1, 1] pixel range) per
            unit of the normalized gradient.
        lam: Weight of the L1 distance to the input, relative to the largest
            initial data-term gradient.
        iterations: Descent steps.
        weight_maps: Optional per-pixel step weights ``(N, S, S)`` at the input size
            (e.g. the normalized fast map clipped to [0, 1]); ``None`` = uniform.
        progress: Receives ``(done, total, message)`` between iterations and may cancel.
        sigma: Gaussian smoothing of the result, in input pixels.
        batch_size: Images per descent.

    Returns:
        Raw maps ``(N, S, S)`` float32 at the detector's input size ``S``.

    Raises:
        inspector.core.progress.Cancelled: when cancelled between iterations.
        NotImplementedError: for detectors without a differentiable score.
    """
    size = detector.preprocessing.image_size
    device = detector.device
    count = len(images)
    out = np.zeros((count, size, size), dtype=np.float32)
    total = max(1, count * iterations)
    # Callers may be in inference mode, whose tensors autograd refuses.
    with torch.inference_mode(False), torch.enable_grad():
        for start in range(0, count, batch_size):
            chunk = images[start:start + batch_size]
            x0 = detector.preprocessing.to_tensor(chunk, device)
            weights = None
            if weight_maps is not None:
                weights = torch.as_tensor(np.asarray(weight_maps[start:start + len(chunk)], dtype=np.float32),
                                          device=device).unsqueeze(1)
            x = _descend(detector, x0, alpha, lam, iterations, weights,
                         lambda i, s=start: progress and progress.update(s * iterations + i * len(chunk), total,
                                                                         "gradient projection"))
            diff = (x - x0).abs().sum(dim=1)
            out[start:start + len(chunk)] = smooth_maps(diff, sigma).cpu().numpy()
    if progress is not None:
        progress.update(total, total, "gradient projection")
    return out


def _descend(detector: Detector, x0: torch.Tensor, alpha: float, lam: float, iterations: int,
             weights: torch.Tensor | None, report) -> torch.Tensor:
    """Proximal gradient descent of ``E``; returns ``x_T`` (detached)."""
    x = x0.clone()
    scale = None
    for step in range(iterations):
        report(step)
        x.requires_grad_(True)
        grad, = torch.autograd.grad(detector.differentiable_score(x).sum(), x)
        x = x.detach()
        if scale is None:
            scale = grad.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
        rate = alpha if weights is None else alpha * weights
        moved = x - rate * (grad / scale) - x0
        x = x0 + moved.sign() * (moved.abs() - rate * lam).clamp_min(0)
    return x
