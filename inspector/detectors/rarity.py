"""Map values in units of their rarity on good images (the autoencoders' two scales).

A :func:`tail_table` holds quantiles of the log-values of good (validation) pixels;
:func:`tail_scores` turns any value into ``-log10`` of the share of good pixels above it,
so maps of different scales become comparable over their whole range.
"""

from __future__ import annotations

from typing import Sequence

import torch

TAIL_LEVELS = (tuple(i / 100 for i in range(100)) + (0.995, 0.998, 0.999))
"""Quantile levels of a :func:`tail_table`: every percent up to 99, then 99.5, 99.8 and 99.9 %."""


def tail_table(values: torch.Tensor, levels: Sequence[float] = TAIL_LEVELS) -> torch.Tensor:
    """Quantiles of ``log(values)`` at ``levels``, the table :func:`tail_scores` reads.

    ``values`` are positive map values of good (validation) images; above torch.quantile's size
    limit a strided sample of them is used.
    """
    flat = values.detach().flatten().double()
    flat = flat[::max(1, flat.numel() // 4_000_000)]
    table = torch.quantile(torch.log(flat.clamp_min(1e-12)), torch.tensor(levels, dtype=torch.float64))
    return torch.cummax(table, dim=0).values


def tail_scores(values: torch.Tensor, table: torch.Tensor, levels: Sequence[float] = TAIL_LEVELS) -> torch.Tensor:
    """Map values in units of their rarity on good images: ``-log10`` of the share of good
    pixels above them.

    Between the table's quantiles the rarity is interpolated linearly in ``log(value)``; below the
    first it is 0, above the last it is extrapolated with the slope between the 99th and the last
    quantile, so a value beyond anything seen on good images keeps growing. Differentiable in
    ``values`` (piecewise linear in their logarithm).

    Args:
        values: Positive map values, any shape.
        table: ``tail_table`` of good images' values, ``(L,)``.
        levels: Its quantile levels (increasing, the last below 1).
    """
    table = table.to(values.device, torch.float64)
    rarity = -torch.log10(1.0 - torch.tensor(levels, dtype=torch.float64, device=values.device))
    logs = torch.log(values.double().clamp_min(1e-12)).flatten()
    upper = torch.searchsorted(table, logs.detach()).clamp(1, len(table) - 1)
    x0, x1, y0, y1 = table[upper - 1], table[upper], rarity[upper - 1], rarity[upper]
    inside = y0 + ((logs - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0.0, 1.0) * (y1 - y0)
    top = len(levels) - 1 - next(i for i, level in enumerate(reversed(levels)) if level <= 0.99)
    slope = (rarity[-1] - rarity[top]) / (table[-1] - table[top]).clamp_min(1e-12)
    beyond = rarity[-1] + (logs - table[-1]) * slope
    out = torch.where(logs > table[-1], beyond, inside)
    return out.reshape(values.shape).to(values.dtype)


def scale_tails(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """``(2, L)`` the :func:`tail_table` of a two-scale map's fine and of its coarse scale, from
    ``(fine, coarse)`` maps of good (validation) images, batch by batch; rounded to float32 as a
    model file stores them, so that a loaded detector draws the same map."""
    values = [torch.cat([pair[k] for pair in pairs]) for k in (0, 1)]
    return torch.stack([tail_table(v) for v in values]).float().double()


def validation_tails(scale_maps, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """:func:`scale_tails` of a two-scale detector's ``scale_maps(x) -> (fine, coarse)`` on
    validation ``images``, ``batch_size`` at a time."""
    return scale_tails([scale_maps(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def larger_rarity(fine: torch.Tensor, coarse: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
    """A two-scale map: at each pixel the larger of the two scales' rarities (``tails``: :func:`scale_tails`)."""
    return torch.maximum(tail_scores(fine, tails[0]), tail_scores(coarse, tails[1]))
