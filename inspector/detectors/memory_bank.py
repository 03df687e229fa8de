"""A memory bank of good patch features and the nearest-neighbour distance to it.

PatchCore's idea (Roth et al., 2022) in a form that fits in seconds on a CPU:
patch features of the good images are projected onto their leading principal
components, a greedy k-center coreset keeps the patches that cover the rest
best, and a patch's anomaly is its Euclidean distance to the nearest kept patch.
Every kept patch remembers the reference image it came from, so that held-out
distances for calibration are taken against the bank without the patches of
the images being scored (see :meth:`MemoryBank.distances`).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

# Up to this many patches the bank keeps them all (the search is then exact and cheap).
KEEP_ALL = 4000
# Otherwise a coreset of this size, chosen among at most CANDIDATES random patches.
CORESET = 3000
CANDIDATES = 60000
DIMENSIONS = 64
_QUERY_CHUNK = 4096


@contextmanager
def _one_cpu_thread(device: torch.device):
    """Run torch's CPU ops on one thread inside the block (restored after).

    The coreset loop is thousands of small, dependent steps; on a CPU whose other
    core is busy (the station's inference thread, other processes) splitting each
    step over two threads costs far more in synchronisation than it gains
    (README, "Fit time").
    """
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def principal_axes(patches: torch.Tensor, dimensions: int, generator: torch.Generator,
                   sample: int = 50000) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(C,)`` and leading principal axes ``(C, D)`` of ``(P, C)`` patches (at most
    ``sample`` of them, drawn with ``generator``)."""
    chosen = patches[torch.randperm(len(patches), generator=generator)[:sample].to(patches.device)]
    mean = chosen.mean(0)
    dims = min(int(dimensions), patches.shape[1], max(1, len(chosen) - 1))
    _, _, vh = torch.linalg.svd(chosen - mean, full_matrices=False)
    return mean, vh[:dims].T.contiguous()


def held_out_chunks(count: int) -> list[np.ndarray]:
    """The rows ``0..count-1`` in consecutive chunks of a tenth of them at most (32 at most).

    A bank scores each chunk of its own references without that chunk's patches, so
    that a reference's held-out distance never finds itself.
    """
    size = min(32, max(1, count // 10))
    return [np.arange(start, min(count, start + size)) for start in range(0, count, size)]


def greedy_coreset(points: torch.Tensor, size: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``size`` points chosen by greedy k-center selection (farthest point first).

    Each step adds the point farthest from those already chosen, so rare patches of
    good images are kept, not only the common ones a random sample would keep.
    """
    count = points.shape[0]
    if size >= count:
        return torch.arange(count)
    with _one_cpu_thread(points.device):
        return _greedy(points, size, seed)


def _greedy(points: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    count = points.shape[0]
    generator = torch.Generator().manual_seed(seed)
    norms = (points * points).sum(1)
    first = int(torch.randint(count, (1,), generator=generator))
    chosen = [first]
    nearest = norms - 2.0 * (points @ points[first]) + norms[first]
    for _ in range(size - 1):
        index = int(nearest.argmax())
        chosen.append(index)
        torch.minimum(nearest, norms - 2.0 * (points @ points[index]) + norms[index], out=nearest)
    return torch.tensor(chosen)


class MemoryBank:
    """Coreset of PCA-projected good patch features with their source images.

    Args:
        dimensions: Principal components kept.
        coreset: Coreset size when there are more than ``keep_all`` patches.
        candidates: Random patches the coreset is chosen among.
        keep_all: Up to this many patches, keep every one.
        device: Where the tensors live.
    """

    def __init__(self, dimensions: int = DIMENSIONS, coreset: int = CORESET, candidates: int = CANDIDATES,
                 keep_all: int = KEEP_ALL, device: torch.device | str = "cpu") -> None:
        self.dimensions = int(dimensions)
        self.coreset = int(coreset)
        self.candidates = int(candidates)
        self.keep_all = int(keep_all)
        self.device = torch.device(device)
        self.mean: torch.Tensor | None = None        # (C,)
        self.projection: torch.Tensor | None = None  # (C, D)
        self.bank: torch.Tensor | None = None        # (M, D)
        self.sources: torch.Tensor | None = None     # (M,) int64 reference-image index

    def fit(self, patches: torch.Tensor, sources: torch.Tensor, seed: int = 0) -> None:
        """Fit on ``(P, C)`` patch features, ``sources[i]`` being the image patch ``i`` came from."""
        patches = patches.to(self.device, torch.float32)
        generator = torch.Generator().manual_seed(seed)
        self.mean, self.projection = principal_axes(patches, self.dimensions, generator)
        if len(patches) <= self.keep_all:
            pool = torch.arange(len(patches))
        else:
            pool = torch.randperm(len(patches), generator=generator)[:self.candidates]
        projected = self.project(patches[pool.to(self.device)])
        keep = greedy_coreset(projected, self.coreset if len(patches) > self.keep_all else len(pool), seed)
        self.bank = projected[keep.to(self.device)].contiguous()
        self.sources = sources.to(torch.int64).cpu()[pool[keep]]

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """``(..., C)`` features in the bank's principal-component space ``(..., D)``."""
        return (features.to(self.device, torch.float32) - self.mean) @ self.projection

    def patches(self, exclude: np.ndarray | None = None) -> torch.Tensor:
        """``(M, D)`` the kept patches, without those of the reference images ``exclude`` when given."""
        if self.bank is None:
            raise RuntimeError("the memory bank is not fitted")
        if exclude is None or not len(exclude):
            return self.bank
        keep = ~torch.isin(self.sources, torch.as_tensor(np.asarray(exclude), dtype=torch.int64))
        return self.bank[keep.to(self.bank.device)]

    def distances(self, features: torch.Tensor, exclude: np.ndarray | None = None) -> torch.Tensor:
        """Distance of each patch of ``(N, C, h, w)`` features to its nearest bank patch, ``(N, h, w)``.

        Args:
            features: Patch features on the grid.
            exclude: Reference-image indices whose patches are left out of the bank
                (held-out distances of those images for calibration).
        """
        bank = self.patches(exclude)
        count, _, height, width = features.shape
        queries = self.project(features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]))
        bank_norms = (bank * bank).sum(1)
        bank_t = bank.T.contiguous()
        nearest = []
        for start in range(0, len(queries), _QUERY_CHUNK):
            part = queries[start:start + _QUERY_CHUNK]
            # |q - b|^2 = |b|^2 - 2 q.b + |q|^2: the query's own norm does not change which bank
            # patch is nearest, so it is added after the minimum (one fused matrix product, one pass).
            squared = torch.addmm(bank_norms, part, bank_t, alpha=-2.0).amin(1)
            nearest.append(squared + (part * part).sum(1))
        return torch.cat(nearest).clamp_min(0).sqrt().view(count, height, width)

    # ---- state ----------------------------------------------------------------------------
    def config(self) -> dict:
        """JSON-able description (without tensors)."""
        return {"dimensions": self.dimensions, "coreset": self.coreset, "candidates": self.candidates,
                "keep_all": self.keep_all, "distance": "euclidean to the nearest coreset patch (PCA space)"}

    def tensors(self) -> dict[str, torch.Tensor]:
        """Projection, bank and source indices."""
        if self.bank is None:
            raise RuntimeError("the memory bank is not fitted")
        return {"mean": self.mean, "projection": self.projection, "bank": self.bank, "sources": self.sources}

    @classmethod
    def from_state(cls, config: dict, tensors: dict[str, torch.Tensor], device: torch.device | str) -> "MemoryBank":
        """Rebuild a fitted bank from :meth:`config` and :meth:`tensors`."""
        bank = cls(int(config["dimensions"]), int(config["coreset"]), int(config["candidates"]),
                   int(config["keep_all"]), device)
        bank.mean = tensors["mean"].to(bank.device, torch.float32)
        bank.projection = tensors["projection"].to(bank.device, torch.float32)
        bank.bank = tensors["bank"].to(bank.device, torch.float32)
        bank.sources = tensors["sources"].to(torch.int64).cpu()
        return bank
