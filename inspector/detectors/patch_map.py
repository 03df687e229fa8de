"""The fast anomaly map: a patch-level Gaussian on intermediate backbone features.

It reuses the forward pass of :class:`inspector.detectors.gaussian.GaussianDetector`:
the stride-8 and stride-16 feature maps are each averaged over 3x3 neighbourhoods,
the coarser one is upsampled (bilinear) to the stride-8 grid, and the two are
concatenated into one feature vector per grid cell. The model is a Gaussian with a
mean per grid position and one covariance shared by all positions (pooled from the
residuals about those means); a cell's score is its Mahalanobis distance. The grid
is upsampled (bilinear) to the input size and Gaussian-smoothed (sigma 4 px).

Why this model (Lite0, 224 input; pixel AUROC on generated sets with 100 good
reference images and 20 good + 20 defective test images per category; "part"
is an aligned object, a plate with four holes and a label, whose defects
include an extra hole at a wrong place and a missing hole)::

    features (3, 4) = stride 8 + stride 16    part   brick  grass  gravel  mean   tensors  fit
    shared Gaussian (position-independent)    0.750  0.992  0.937  0.950   0.907  0.06 MB  < 1 s
    PaDiM, per-position Gaussians (100 dims)  0.996  0.994  0.946  0.965   0.975  31 MB    13-55 s
    per-position mean, shared covariance      0.996  0.993  0.949  0.956   0.973  0.43 MB  ~ 1 s
    PatchCore, 1 % greedy coreset, 1-NN       0.671  0.992  0.825  0.913   0.850  0.4 MB   85-100 s

Position-independent models (shared Gaussian, PatchCore) cannot see a hole in
the wrong place, because a hole is normal elsewhere; per-position Gaussians
can, but need a ``C x C`` covariance per cell (31 MB even with 100 of the 120
channels, and slow to fit). Per-position means with one pooled covariance keep
PaDiM's accuracy (-0.002 mean AUROC) at 1/70 of its size and 1/10 of its fit time; the
coreset search alone made PatchCore too slow to fit in seconds here. The fit
times are with the 2-core CPU shared with other jobs. Other features: stride 8
+ first stride-16 level (80 ch) beat the last stride-16 level (112 ch), 0.973
vs 0.962; adding the stride-4 level gave 0.980 but a 56x56 grid (15 ms per map
instead of 2.5 ms).

With this module through ``GaussianDetector(fast_map=True)`` on the
generator's default sets (100 reference images, 20 good + 50 defective test
images, scored at the generator's 256 px): pixel AUROC brick 0.990, grass
0.971, gravel 0.956 (AUPRO at 30 % FPR 0.972, 0.896, 0.839); seeds 1 and 2
give means of 0.975 and 0.975. At batch 1 on this shared 2-core CPU a map
takes 1.5-2.1 ms on the features of the detector's pass (25-32 ms for the pass
and score; the difference of the two timings, 0-3.5 ms, is within their noise),
see ``tests/benchmarks/bench_segmentation_speed.py``. The tensors take 0.43 MB; fitting
with the held-out maps takes 0.6 s for 100 images and 0.8 s for 200.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from inspector.backbones.efficientnet import BackboneInfo
from inspector.core.progress import Progress
from inspector.segmentation.smoothing import SMOOTH_SIGMA, grid_to_map, smooth_maps  # noqa: F401 (part of this API)

KIND = "patch-gaussian"
LEVEL_STRIDES = (8, 16)
POOL = 3
# Ridge added to the covariance, relative to its mean variance.
RIDGE = 0.01
_CHUNK = 32


def stack_pooled_levels(spatial: Sequence[torch.Tensor], pool: int) -> torch.Tensor:
    """Each level averaged over ``pool x pool`` neighbourhoods, brought to the first level's grid
    (bilinear) and concatenated: ``(N, sum C, h, w)``. Plain tensor operations, so the ONNX
    export traces the same code."""
    grid = spatial[0].shape[-2:]
    parts = []
    for maps in spatial:
        if pool > 1:
            maps = F.avg_pool2d(maps, pool, stride=1, padding=pool // 2, count_include_pad=False)
        if maps.shape[-2:] != grid:
            maps = F.interpolate(maps, size=grid, mode="bilinear", align_corners=False)
        parts.append(maps)
    return torch.cat(parts, dim=1)


def default_levels(info: BackboneInfo, strides: Sequence[int] = LEVEL_STRIDES) -> tuple[int, ...]:
    """For each stride, the first backbone level with that stride.

    Raises:
        ValueError: if the backbone has no level with one of the strides.
    """
    levels = []
    for stride in strides:
        matches = [i for i, s in enumerate(info.level_strides) if s == stride]
        if not matches:
            raise ValueError(f"backbone {info.name!r} has no level with stride {stride}")
        levels.append(matches[0])
    return tuple(levels)


def cell_mahalanobis(features: torch.Tensor, mean: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """``(N, h, w)`` Mahalanobis distance (not squared) of each cell of ``(N, C, h, w)`` features
    from its own mean ``(C, h, w)`` under one shared precision ``(C, C)``.

    The product is taken channel-first, ``P @ X`` per image on ``(C, h * w)`` (one batched
    matrix product over contiguous memory), for the detector and the exported graph alike.
    """
    centred = (features - mean).flatten(2)
    squared = ((precision @ centred) * centred).sum(1)
    return squared.clamp_min(0).sqrt().unflatten(1, features.shape[2:])


class PatchMapModel:
    """Per-position means, one shared covariance, over pooled multi-level patch features.

    Args:
        levels: Backbone level indices whose maps are used; the first sets the grid.
        channels: Channels of each of those levels.
        device: Where the tensors live and maps are computed.
        pool: Side of the local average pooling window.
        sigma: Smoothing of the upsampled map, in input pixels.
    """

    def __init__(self, levels: Sequence[int], channels: Sequence[int], device: torch.device | str = "cpu",
                 pool: int = POOL, sigma: float = SMOOTH_SIGMA) -> None:
        self.levels = tuple(int(level) for level in levels)
        self.channels = tuple(int(c) for c in channels)
        self.device = torch.device(device)
        self.pool = int(pool)
        self.sigma = float(sigma)
        self.mean: torch.Tensor | None = None        # (C, h, w)
        self.precision: torch.Tensor | None = None   # (C, C)

    @classmethod
    def for_backbone(cls, info: BackboneInfo, device: torch.device | str = "cpu") -> PatchMapModel:
        """An unfitted model on the backbone's stride-8 and stride-16 levels."""
        levels = default_levels(info)
        return cls(levels, [info.level_channels[level] for level in levels], device)

    # ---- features -------------------------------------------------------------------------
    def _features(self, spatial: Sequence[torch.Tensor]) -> torch.Tensor:
        """``(N, C, h, w)`` float32 features on the finest level's grid."""
        return stack_pooled_levels([maps.to(self.device, torch.float32) for maps in spatial], self.pool)

    # ---- fitting --------------------------------------------------------------------------
    def features(self, spatial: Sequence[torch.Tensor]) -> torch.Tensor:
        """``(N, C, h, w)`` float32 pooled multi-level features on the finest level's grid."""
        return self._features(spatial)

    @staticmethod
    def statistics_of(features: torch.Tensor) -> tuple[int, torch.Tensor, torch.Tensor]:
        """Image count, per-position sums ``(C, h, w)`` and summed outer products ``(C, C)`` of features."""
        sums, outer = None, None
        for start in range(0, len(features), _CHUNK):
            part = features[start:start + _CHUNK].double()
            flat = part.permute(0, 2, 3, 1).reshape(-1, part.shape[1])
            part_sums, part_outer = part.sum(0), flat.T @ flat
            sums = part_sums if sums is None else sums + part_sums
            outer = part_outer if outer is None else outer + part_outer
        return len(features), sums, outer

    def set_statistics(self, count: int, sums: torch.Tensor, outer: torch.Tensor) -> None:
        """Fit from :meth:`statistics_of` results (sums of them for unions of image sets)."""
        self._set_from_statistics(count, sums, outer)

    def _statistics(self, spatial: Sequence[torch.Tensor], rows: np.ndarray) -> tuple[int, torch.Tensor, torch.Tensor]:
        """Image count, per-position feature sums ``(C, h, w)`` and the summed outer products ``(C, C)``."""
        index = torch.as_tensor(rows, dtype=torch.long)
        total = None
        for start in range(0, len(index), _CHUNK):
            features = self._features([m[index[start:start + _CHUNK].to(m.device)] for m in spatial])
            part = self.statistics_of(features)
            total = part if total is None else tuple(a + b for a, b in zip(total, part))
        return total

    def _set_from_statistics(self, count: int, sums: torch.Tensor, outer: torch.Tensor) -> None:
        channels, cells = sums.shape[0], sums.shape[1] * sums.shape[2]
        flat_sums = sums.reshape(channels, cells)
        # Scatter about the per-position means, pooled over positions.
        scatter = outer - flat_sums @ flat_sums.T / count
        covariance = scatter / max(1, cells * (count - 1))
        ridge = RIDGE * covariance.diagonal().mean().clamp_min(1e-12)
        covariance = covariance + ridge * torch.eye(channels, dtype=covariance.dtype, device=covariance.device)
        precision = torch.linalg.inv(covariance)
        self.mean = (sums / count).float()
        self.precision = ((precision + precision.T) / 2).float()

    def fit(self, spatial: Sequence[torch.Tensor]) -> None:
        """Fit on the feature maps (one tensor per level, ``N`` images each) of good images."""
        with torch.inference_mode():
            self._set_from_statistics(*self._statistics(spatial, np.arange(spatial[0].shape[0])))

    def fit_with_held_out(self, spatial: Sequence[torch.Tensor], held_out_idx: np.ndarray, image_size: int,
                          progress: Progress | None = None) -> np.ndarray:
        """Fit without the held-out images, map them, then refit on all images.

        The feature statistics of both groups are gathered in one pass; the final
        model is fitted on their sum.

        Returns:
            Raw maps ``(len(held_out_idx), S, S)`` float32 of the held-out images.
        """
        count = spatial[0].shape[0]
        held = np.unique(np.asarray(held_out_idx, dtype=np.int64))
        rest = np.setdiff1d(np.arange(count), held)
        if len(held) == 0:
            self.fit(spatial)
            return np.zeros((0, image_size, image_size), np.float32)
        if progress is not None:
            progress.update(0, 2, "fitting the patch map")
        with torch.inference_mode():
            held_stats = self._statistics(spatial, held)
            rest_stats = self._statistics(spatial, rest)
            self._set_from_statistics(*rest_stats)
            index = torch.as_tensor(held)
            maps = [self.maps([m[index[s:s + _CHUNK].to(m.device)] for m in spatial], image_size).cpu()
                    for s in range(0, len(held), _CHUNK)]
            if progress is not None:
                progress.update(1, 2, "fitting the patch map")
            self._set_from_statistics(*(a + b for a, b in zip(held_stats, rest_stats)))
        if not maps:
            return np.zeros((0, image_size, image_size), np.float32)
        return torch.cat(maps).numpy().astype(np.float32, copy=False)

    # ---- maps -----------------------------------------------------------------------------
    def grids(self, spatial: Sequence[torch.Tensor]) -> torch.Tensor:
        """Raw per-cell distances ``(N, h, w)`` float32 on the feature grid.

        Raises:
            RuntimeError: if the model is not fitted or the feature grid does not match.
        """
        return self.grids_from_features(self._features(spatial))

    def grids_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """Like :meth:`grids`, from ``(N, C, h, w)`` features already pooled onto the grid."""
        if self.mean is None or self.precision is None:
            raise RuntimeError("the patch map is not fitted")
        with torch.inference_mode():
            features = features.to(self.device, torch.float32)
            if features.shape[1:] != self.mean.shape:
                raise RuntimeError(f"patch features {tuple(features.shape[1:])} do not match the fitted grid "
                                   f"{tuple(self.mean.shape)}; the input size must be the one fitted")
            return cell_mahalanobis(features, self.mean, self.precision)

    def maps(self, spatial: Sequence[torch.Tensor], image_size: int) -> torch.Tensor:
        """Raw maps ``(N, S, S)`` float32 on the model's device, upsampled and smoothed."""
        return grid_to_map(self.grids(spatial), image_size, self.sigma)

    # ---- state ----------------------------------------------------------------------------
    def config(self) -> dict:
        """JSON-able description (without tensors)."""
        return {"kind": KIND, "levels": list(self.levels), "channels": list(self.channels), "pool": self.pool,
                "sigma": self.sigma, "ridge": RIDGE,
                "distance": "mahalanobis (not squared), per-position mean, shared covariance"}

    def tensors(self) -> dict[str, torch.Tensor]:
        """The fitted mean ``(C, h, w)`` and precision ``(C, C)``."""
        if self.mean is None or self.precision is None:
            raise RuntimeError("the patch map is not fitted")
        return {"mean": self.mean, "precision": self.precision}

    @classmethod
    def from_state(cls, config: dict, tensors: dict[str, torch.Tensor], device: torch.device | str) -> PatchMapModel:
        """Rebuild a fitted model from :meth:`config` and :meth:`tensors`.

        Raises:
            ValueError: for a configuration of another kind of patch map.
        """
        if config.get("kind") != KIND:
            raise ValueError(f"unsupported patch map {config.get('kind')!r}; this version reads {KIND!r}")
        model = cls(config["levels"], config["channels"], device, pool=int(config.get("pool", POOL)),
                    sigma=float(config.get("sigma", SMOOTH_SIGMA)))
        model.mean = tensors["mean"].to(model.device, torch.float32)
        model.precision = tensors["precision"].to(model.device, torch.float32)
        return model
