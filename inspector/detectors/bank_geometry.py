"""The patch memory bank's geometry: border shrink, stride, and each cell's depth from the frame's edge.

Shared by the fusion detector (:mod:`inspector.detectors.fusion`) and its exported graph
(:mod:`inspector.export.graph`), so that both compute the bank's input the same way.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

BANK_STRIDE = 16
"""The bank's stride in pixels: 2x2 averages of the stride-8 patch features (8: each patch)."""


def edge_classes(height: int, width: int, depth: int) -> torch.Tensor:
    """``(h, w)`` each cell's distance to the frame's edge in cells (0 on the outer ring), capped at ``depth``."""
    rows = torch.arange(height).view(-1, 1)
    cols = torch.arange(width).view(1, -1)
    edge = torch.minimum(torch.minimum(rows, height - 1 - rows), torch.minimum(cols, width - 1 - cols))
    return edge.clamp_max(depth)


def border_weights(height: int, width: int, channels: Sequence[int], scales: Sequence[int],
                   pool: int) -> torch.Tensor:
    """``(1, C, h, w)`` factors turning ``pool x pool`` averages without padding into averages
    over a zero-padded frame: each level's share of its window inside the frame, on that
    level's own grid (``scales``: its stride over the first level's), brought to the first
    level's grid like the features (bilinear)."""
    blocks = []
    for count, scale in zip(channels, scales):
        inside = torch.ones(1, 1, max(1, height // scale), max(1, width // scale))
        if pool > 1:
            inside = F.avg_pool2d(inside, pool, stride=1, padding=pool // 2, count_include_pad=True)
        if inside.shape[-2:] != (height, width):
            inside = F.interpolate(inside, size=(height, width), mode="bilinear", align_corners=False)
        blocks.append(inside.expand(1, int(count), height, width))
    return torch.cat(blocks, 1)


def bank_features(patch_features: torch.Tensor, stride: int = BANK_STRIDE,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """The bank's features from the stride-8 patch features: border-shrunk by ``weights``
    (:func:`border_weights`) when given, 2x2-averaged for a stride-16 bank."""
    if weights is not None:
        patch_features = patch_features * weights
    return F.avg_pool2d(patch_features, 2) if stride == 16 else patch_features


def depth_factors(mean: torch.Tensor, depth: int) -> torch.Tensor:
    """``(depth + 1,)`` factors making a mean distance grid ``(h, w)`` equal at every depth from the edge.

    A cell on the frame's edge sees fewer, edge-affected positions and is matched only by
    the references' edge cells, so its distances run higher than inside even after the
    border shrink; the factor of depth ``d`` (interior mean / mean at depth ``d``) takes that out.
    """
    classes = edge_classes(*mean.shape, depth).to(mean.device)
    per_depth = torch.stack([mean[classes == d].mean() if bool((classes == d).any()) else mean.mean()
                             for d in range(depth + 1)])
    return per_depth[-1] / per_depth.clamp_min(1e-12)
