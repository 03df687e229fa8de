"""The nearest good patch at the same place: a small memory bank per grid cell.

The memory bank (:mod:`inspector.detectors.memory_bank`) is blind to place: a patch
is normal when it resembles a good patch from anywhere. The per-position Gaussian
(:mod:`inspector.detectors.patch_map`) keeps place but models each cell by a single
Gaussian with a covariance shared by all cells, so a cell that good parts show in
several ways (a busbar here or there, a cut corner or not) looks unusual in each of
them. This bank keeps both place and variety: every grid cell keeps the reference
images' patches of that cell (all of them, or a greedy k-center coreset of ``keep``),
and a patch's distance is to the nearest kept patch of its own cell or of the cells
up to ``radius`` cells away (tolerance for small shifts). Each cell's distances are
then standardized by that cell's mean and spread over the reference images, each
scored without the patches of its own set of images (the fusion detector's calibration
fold; by default a tenth), so busy and quiet places of
an aligned part count alike; a reference held out for calibration is standardized by
statistics of the other references only.

Features are the memory bank's (border-shrunk stride-16 patches) projected onto
their own leading principal components.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from inspector.detectors.memory_bank import held_out_chunks, principal_axes

KEEP = 256
"""Patches kept per cell (a greedy k-center coreset when the references have more)."""
RADIUS = 2
"""Cells around a patch's own cell whose kept patches it is compared with."""
DIMENSIONS = 64
_QUERY_CHUNK = 8
_GRAM_FLOATS = 8 * 1024 * 1024


def _key(rows) -> tuple[int, ...]:
    return tuple(sorted(int(i) for i in np.asarray(rows).reshape(-1)))


def cell_coresets(points: torch.Tensor, size: int, seed: int = 0) -> torch.Tensor:
    """``(G, size)`` indices: for each of ``G`` cells, ``size`` of its ``N`` points ``(G, N, D)``
    chosen by greedy k-center selection (farthest point first).

    Cells are taken in groups whose Gram matrices ``(g, N, N)`` fit in about 32 MB, so that
    each greedy step reads one row per cell instead of all the cell's points.
    """
    cells, count, _ = points.shape
    if size >= count:
        return torch.arange(count, device=points.device).expand(cells, count).clone()
    first = int(torch.randint(count, (1,), generator=torch.Generator().manual_seed(seed)))
    group = max(1, _GRAM_FLOATS // (count * count))
    chosen = []
    for start in range(0, cells, group):
        part = points[start:start + group]
        gram = torch.bmm(part, part.transpose(1, 2))                        # (g, N, N)
        norms = torch.diagonal(gram, dim1=1, dim2=2)                         # (g, N)
        rows = torch.arange(len(part), device=points.device)
        index = torch.full((len(part),), first, dtype=torch.int64, device=points.device)
        picked = [index]
        nearest = norms - 2.0 * gram[rows, index] + norms[rows, index].unsqueeze(1)
        for _ in range(size - 1):
            index = nearest.argmax(1)
            picked.append(index)
            torch.minimum(nearest, norms - 2.0 * gram[rows, index] + norms[rows, index].unsqueeze(1), out=nearest)
        chosen.append(torch.stack(picked, 1))
    return torch.cat(chosen)


def window_gathers(height: int, width: int, radius: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The two static index tensors of :func:`nearest_in_window` for an ``h x w`` grid.

    With ``S = (2r + 1)^2`` window slots (offsets ``(dy, dx)`` in ``[-r, r]^2``):

    - ``windows`` ``(h * w * S,)``: for bank cell ``c`` and slot ``s``, the query cell
      ``c + offset(s)`` on the query grid padded by ``r`` cells (flattened);
    - ``back`` ``(h * w, S)``: for query cell ``c`` and slot ``s``, the row ``(c - offset(s)) * S + s``
      of the per-(bank cell, slot) results, or ``h * w * S`` (one extra row, "nothing") when
      that bank cell is off the grid.
    """
    side = 2 * radius + 1
    offsets = torch.arange(side, device=device) - radius
    dy, dx = offsets.repeat_interleave(side), offsets.repeat(side)             # (S,)
    rows = torch.arange(height, device=device).view(-1, 1, 1)
    cols = torch.arange(width, device=device).view(1, -1, 1)
    padded_width = width + 2 * radius
    windows = ((rows + dy + radius) * padded_width + (cols + dx + radius)).reshape(-1)
    source_rows, source_cols = rows - dy, cols - dx                                # (h, w, S)
    inside = (source_rows >= 0) & (source_rows < height) & (source_cols >= 0) & (source_cols < width)
    slot = torch.arange(side * side, device=device)
    back = (source_rows * width + source_cols) * side * side + slot
    back = torch.where(inside, back, torch.full_like(back, height * width * side * side))
    return windows, back.reshape(height * width, -1)


def nearest_in_window(queries: torch.Tensor, bank: torch.Tensor, norms: torch.Tensor, radius: int,
                      gathers: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``(N, h, w)`` distance of each query patch to the nearest kept patch within ``radius`` cells.

    Where no patch is kept around a cell (all left out) the distance is the largest float or inf.

    Args:
        queries: ``(N, h, w, D)`` projected patches.
        bank: ``(h, w, K, D)`` kept patches per cell.
        norms: ``(h, w, K)`` their squared norms; ``inf`` for patches left out (a reference
            scored without its own patches).
        radius: ``r``.
        gathers: :func:`window_gathers` of this grid and radius (computed when not given).

    One formula for the detector and the exported graph (static shapes, no data-dependent
    control flow). Each bank cell meets the queries of the cells around it in one batched
    product (the bank is read once, in place); the nearest patch is found by
    ``|b|^2 - 2 q.b`` and a minimum over the cell's patches, then over the window's cells,
    and its distance is then computed as ``|q - b|`` itself. The expanded form alone cancels:
    a reference's own kept patch came out at 0.01-0.02 instead of 0, differently in every
    runtime, which failed the export's parity check on small models.
    """
    count, height, width, dims = queries.shape
    cells, kept, side = height * width, bank.shape[2], 2 * radius + 1
    slots = side * side
    windows, back = gathers if gathers is not None else window_gathers(height, width, radius, queries.device)
    padded = F.pad(queries.permute(1, 2, 0, 3), (0, 0, 0, 0, radius, radius, radius, radius))  # (h+2r, w+2r, N, D)
    around = padded.reshape(-1, count, dims)[windows].reshape(cells, slots * count, dims)
    flat_bank = bank.reshape(cells, kept, dims)
    squared = torch.baddbmm(norms.reshape(cells, kept, 1), flat_bank, around.transpose(1, 2), alpha=-2.0)
    values, index = squared.min(1)                                                  # (hw, S * N)
    # One extra row for "no bank cell there": the largest finite value (no runtime has to store inf).
    nothing = torch.finfo(values.dtype).max
    values = torch.cat([values.reshape(cells * slots, count),
                        torch.full((1, count), nothing, dtype=values.dtype, device=values.device)])
    index = torch.cat([index.reshape(cells * slots, count),
                       torch.zeros((1, count), dtype=index.dtype, device=index.device)])
    rows = back.reshape(-1)
    best, slot = values[rows].reshape(cells, slots, count).min(1)                   # (hw, N)
    chosen = torch.gather(back, 1, slot)                                            # (hw, N) result rows
    column = torch.arange(count, device=chosen.device)
    patch = torch.div(chosen, slots, rounding_mode="floor") * kept + index.reshape(-1)[chosen * count + column]
    nearest = bank.reshape(-1, dims)[patch.clamp_max(cells * kept - 1).reshape(-1)].reshape(cells, count, dims)
    own = queries.permute(1, 2, 0, 3).reshape(cells, count, dims)
    distance = (own - nearest).pow(2).sum(2).sqrt()
    distance = torch.where(best >= nothing, best, distance)  # nothing kept around: the largest float, or inf
    return distance.T.reshape(count, height, width)


class LocalBank:
    """Kept good patches per grid cell, the nearest-in-window distance, per-cell standardization.

    Args:
        radius: Cells around a patch's own cell searched for its nearest good patch.
        keep: Patches kept per cell.
        dimensions: Principal components of the patch features.
        device: Where the tensors live.
    """

    def __init__(self, radius: int = RADIUS, keep: int = KEEP, dimensions: int = DIMENSIONS,
                 device: torch.device | str = "cpu") -> None:
        if int(radius) < 0:
            raise ValueError("the local bank's radius must be 0 or more cells")
        if int(keep) < 1:
            raise ValueError("the local bank must keep at least one patch per cell")
        self.radius, self.keep, self.dimensions = int(radius), int(keep), int(dimensions)
        self.device = torch.device(device)
        self.mean: torch.Tensor | None = None         # (C,)
        self.projection: torch.Tensor | None = None   # (C, D)
        self.bank: torch.Tensor | None = None         # (h, w, K, D)
        self.sources: torch.Tensor | None = None      # (h, w, K) reference-image index
        self.cell_mean: torch.Tensor | None = None    # (h, w)
        self.cell_std: torch.Tensor | None = None     # (h, w)
        self._norms: torch.Tensor | None = None       # (h, w, K) squared norms of the kept patches
        self._gathers: tuple[torch.Tensor, torch.Tensor] | None = None  # window_gathers of the bank's grid
        self._references: torch.Tensor | None = None  # (N, h, w) held-out distances, during the fit only
        self._parts: set[tuple[int, ...]] = set()          # the fit's partition, during the fit only
        self._fold_statistics: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    def fit(self, features: torch.Tensor, seed: int = 0, partition: Sequence[np.ndarray] | None = None) -> None:
        """Fit on the reference images' ``(N, C, h, w)`` patch features (image ``i`` is source ``i``).

        Args:
            features: The references' patch features on the bank's grid.
            seed: Seed of the projection's sample and the coresets' first patches.
            partition: Disjoint row sets covering ``0..N-1``; each reference's held-out distance
                (for the cell statistics) is taken without its own set's patches. The fusion
                detector passes its calibration folds, so that :meth:`held_out` gives the
                folds' values without a second search. By default consecutive tenths.
        """
        features = features.to(self.device, torch.float32)
        count, channels, height, width = features.shape
        patches = features.permute(0, 2, 3, 1).reshape(-1, channels)
        self.mean, self.projection = principal_axes(patches, self.dimensions, torch.Generator().manual_seed(seed))
        projected = self.project(features)                                          # (N, h, w, D)
        per_cell = projected.permute(1, 2, 0, 3).reshape(height * width, count, -1)  # (hw, N, D)
        chosen = cell_coresets(per_cell, min(self.keep, count), seed)               # (hw, K)
        kept = torch.gather(per_cell, 1, chosen.unsqueeze(2).expand(-1, -1, per_cell.shape[2]))
        self.bank = kept.reshape(height, width, -1, per_cell.shape[2]).contiguous()
        self.sources = chosen.reshape(height, width, -1).to(torch.int64).cpu()
        self.cell_mean = self.cell_std = None
        self._norms = self._gathers = None
        parts = held_out_chunks(count) if partition is None else [np.asarray(rows) for rows in partition]
        references = torch.empty((count, height, width), dtype=torch.float64, device=self.device)
        for rows in parts:
            index = torch.as_tensor(rows, dtype=torch.int64, device=self.device)
            references[index] = self.raw_distances(projected[index], rows).double()
        self._references, self._parts = references, {_key(rows) for rows in parts}
        self._fold_statistics = {}
        self.cell_mean, self.cell_std = self._statistics(self._references)

    @staticmethod
    def _statistics(grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-cell mean and (floored) spread of held-out distance grids ``(N, h, w)``, ignoring infs."""
        finite = torch.isfinite(grids)
        grids = torch.where(finite, grids, torch.zeros_like(grids))
        seen = finite.sum(0).clamp_min(1)
        mean = grids.sum(0) / seen
        std = ((grids - mean) ** 2 * finite).sum(0).div(seen).sqrt()
        return mean.float(), torch.maximum(std, std.mean().clamp_min(1e-6) * 0.1).float()

    def statistics_without(self, exclude: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-cell mean and spread a bank fitted without references ``exclude`` would have.

        Calibration scores a held-out reference against statistics that never saw it, as a
        new part is: with few references, a cell's spread estimated with the image itself
        shrinks that image's own standardized distance, and the maximum over the cells then
        understates what unseen good parts show. Available during the fit (the references'
        held-out distances are not stored in the model file); afterwards, the full statistics.
        """
        if exclude is None or not len(exclude) or self._references is None:
            return self.cell_mean, self.cell_std
        key = _key(exclude)
        cached = self._fold_statistics.get(key)
        if cached is None:
            keep = torch.ones(len(self._references), dtype=torch.bool)
            keep[torch.as_tensor(key, dtype=torch.int64)] = False
            cached = self._fold_statistics[key] = self._statistics(self._references[keep.to(self._references.device)])
        return cached

    def held_out(self, rows: np.ndarray) -> torch.Tensor:
        """``(len(rows), h, w)`` standardized held-out distances of references ``rows``, one set of
        the fit's partition: what :meth:`distances` gives their features with ``exclude=rows``,
        from the fit's own search (during the fit only)."""
        if self._references is None or _key(rows) not in self._parts:
            raise RuntimeError("held-out distances exist during the fit, for a set of its partition")
        mean, std = self.statistics_without(rows)
        index = torch.as_tensor(np.asarray(rows), dtype=torch.int64, device=self._references.device)
        return ((self._references[index] - mean.double()) / std.double()).float()

    def release_references(self) -> None:
        """Forget the references' held-out distances once the fit is calibrated."""
        self._references, self._parts, self._fold_statistics = None, set(), {}

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """``(N, C, h, w)`` features as ``(N, h, w, D)`` principal-component coordinates."""
        return (features.to(self.device, torch.float32).permute(0, 2, 3, 1) - self.mean) @ self.projection

    def searchable(self, exclude: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The kept patches ``(h, w, K, D)`` and their squared norms ``(h, w, K)`` (``inf`` for the
        patches of reference images ``exclude``)."""
        if self.bank is None:
            raise RuntimeError("the local bank is not fitted")
        norms = self._norms
        if norms is None:
            norms = self._norms = (self.bank * self.bank).sum(3)
        if exclude is not None and len(exclude):
            left_out = torch.isin(self.sources, torch.as_tensor(np.asarray(exclude), dtype=torch.int64))
            norms = norms.masked_fill(left_out.to(norms.device), float("inf"))
        return self.bank, norms

    def raw_distances(self, projected: torch.Tensor, exclude: np.ndarray | None = None) -> torch.Tensor:
        """``(N, h, w)`` nearest-in-window distances of projected patches ``(N, h, w, D)`` (``inf``
        where every patch around was left out)."""
        bank, norms = self.searchable(exclude)
        if self._gathers is None:  # per grid, not per frame
            self._gathers = window_gathers(bank.shape[0], bank.shape[1], self.radius, bank.device)
        gathers = self._gathers
        out = torch.cat([nearest_in_window(projected[start:start + _QUERY_CHUNK], bank, norms, self.radius, gathers)
                         for start in range(0, len(projected), _QUERY_CHUNK)])
        return out.masked_fill(out >= torch.finfo(out.dtype).max, float("inf"))

    def distances(self, features: torch.Tensor, exclude: np.ndarray | None = None) -> torch.Tensor:
        """``(N, h, w)`` per-cell standardized distances of ``(N, C, h, w)`` features.

        Args:
            features: Patch features on the bank's grid.
            exclude: Reference-image indices whose kept patches are left out, and during
                the fit whose held-out distances are left out of the cell statistics
                (held-out distances of those images for calibration).
        """
        if self.cell_mean is None:
            raise RuntimeError("the local bank is not fitted")
        grid = self.raw_distances(self.project(features), exclude)
        mean, std = self.statistics_without(exclude)
        return (grid - mean) / std

    # ---- state ----------------------------------------------------------------------------
    def config(self) -> dict:
        """JSON-able description (without tensors)."""
        return {"radius": self.radius, "keep": self.keep, "dimensions": self.dimensions,
                "distance": "euclidean to the nearest kept patch within radius cells (PCA space), "
                            "standardized per cell"}

    def tensors(self) -> dict[str, torch.Tensor]:
        """Projection, kept patches, their sources and the per-cell statistics."""
        if self.cell_mean is None:
            raise RuntimeError("the local bank is not fitted")
        return {"mean": self.mean, "projection": self.projection, "bank": self.bank, "sources": self.sources,
                "cell_mean": self.cell_mean, "cell_std": self.cell_std}

    @classmethod
    def from_state(cls, config: dict, tensors: dict[str, torch.Tensor], device: torch.device | str) -> "LocalBank":
        """Rebuild a fitted bank from :meth:`config` and :meth:`tensors`."""
        bank = cls(int(config["radius"]), int(config["keep"]), int(config["dimensions"]), device)
        for name in ("mean", "projection", "bank", "cell_mean", "cell_std"):
            setattr(bank, name, tensors[name].to(bank.device, torch.float32))
        bank.sources = tensors["sources"].to(torch.int64).cpu()
        return bank
