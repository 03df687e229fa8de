"""The zero-training detector: Gaussians on pretrained EfficientNet features.

Rippel, Mertens and Merhof (2020), "Modeling the Distribution of Normal Data in
Pre-Trained Deep Features for Anomaly Detection": each selected level's feature
map is average-pooled to a vector; a multivariate Gaussian (Ledoit-Wolf shrunk
covariance, fitted in float64) is fitted per level to the good images; the image
score is the sum over levels of the (non-squared) Mahalanobis distances.

The same forward pass also feeds the fast patch-level map
(:mod:`inspector.detectors.patch_map`) when one is attached.
"""

from __future__ import annotations

import copy
import logging
from typing import Sequence

import numpy as np
import torch

from inspector.backbones.efficientnet import FeatureBackbone, build_backbone, default_preprocessing
from inspector.backbones.preprocessing import Preprocessing
from inspector.core.progress import Progress
from inspector.detectors.base import Detector, FitResult, batches, kfold_indices, pick_device, register, resolve_folds
from inspector.detectors.gaussian_fit import fit_gaussian, mahalanobis

log = logging.getLogger(__name__)

ALL_LEVELS = tuple(range(9))
MIN_IMAGES = 10
WARN_IMAGES = 20


@register
class GaussianDetector(Detector):
    """Sum of per-level Mahalanobis distances of pooled EfficientNet features.

    Args:
        backbone: Backbone name (``lite0`` ... ``b7``).
        weights: Weights file (needed for B0-B7).
        image_size: Input size; defaults to the backbone's native size.
        levels: Backbone level indices to model (0 = stem ... 8 = head); all by default.
        fast_map: Attach the fast patch-level map, fitted in the same pass.
        batch_size: Images per forward pass.
        device: Torch device; CUDA when available by default.
    """

    kind = "gaussian"
    title = "Gaussian"
    description = "Mahalanobis distance of pooled EfficientNet features per level; no training"
    uses_backbone = True

    def __init__(self, backbone: str = "lite0", weights: str | None = None, image_size: int | None = None,
                 levels: Sequence[int] = ALL_LEVELS, fast_map: bool = True, batch_size: int = 16,
                 device: torch.device | str | None = None, _net: FeatureBackbone | None = None) -> None:
        self.device = pick_device(device)
        self.net = _net if _net is not None else build_backbone(backbone, weights, self.device)
        self.preprocessing: Preprocessing = default_preprocessing(
            self.net.info.name, image_size or self.default_image_size(self.net.info.name))
        self.weights = str(weights) if weights else None
        self.levels = tuple(sorted(int(level) for level in levels))
        bad = [lvl for lvl in self.levels if not 0 <= lvl < len(self.net.info.level_names)]
        if bad or not self.levels:
            raise ValueError(f"levels must be a non-empty subset of 0..{len(self.net.info.level_names) - 1}")
        self.batch_size = int(batch_size)
        self.means: list[torch.Tensor] = []
        self.precisions: list[torch.Tensor] = []
        self.patch_map = self._new_patch_map() if fast_map else None

    @classmethod
    def default_image_size(cls, backbone: str) -> int:
        """The input size used when none is asked for: the backbone's own convention."""
        return default_preprocessing(backbone).image_size

    def _new_patch_map(self):
        from inspector.detectors.patch_map import PatchMapModel

        return PatchMapModel.for_backbone(self.net.info, device=self.device)

    # ---- features -------------------------------------------------------------------------
    def _deepest_level(self) -> int:
        deepest = max(self.levels)
        if self.patch_map is not None:
            deepest = max(deepest, *self.patch_map.levels)
        return deepest

    def _forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        maps = self.net(x, upto=self._deepest_level())
        pooled = [maps[level].mean(dim=(2, 3)) for level in self.levels]
        spatial = [maps[level] for level in self.patch_map.levels] if self.patch_map is not None else []
        return pooled, spatial

    def _extract(self, images: Sequence[np.ndarray], progress: Progress | None = None):
        from inspector.backbones.onnx_extraction import PROBE_IMAGES, onnx_forward

        pooled_parts: list[list[torch.Tensor]] = [[] for _ in self.levels]
        spatial_parts: list[list[torch.Tensor]] = []
        done, forward = 0, self._forward
        self.extraction_engine = "torch"
        with torch.inference_mode():
            if len(images) > self.batch_size:
                # A large fit runs on onnxruntime when the traced graph matches torch on a few images.
                probe = self.preprocessing.to_tensor(images[:PROBE_IMAGES], self.device)
                engine, why = onnx_forward(self._forward, probe, None, len(images), self.device)
                if engine is not None:
                    forward, self.extraction_engine = engine, engine.engine
                log.info("feature extraction: %s", why)
            for chunk in batches(images, self.batch_size):
                pooled, spatial = forward(self.preprocessing.to_tensor(chunk, self.device))
                for parts, features in zip(pooled_parts, pooled):
                    parts.append(features.double().cpu())
                if not spatial_parts:
                    spatial_parts = [[] for _ in spatial]
                for parts, maps in zip(spatial_parts, spatial):
                    parts.append(maps)
                done += len(chunk)
                if progress is not None:
                    progress.update(done, len(images), "extracting features")
        pooled_all = [torch.cat(parts).numpy() for parts in pooled_parts]
        spatial_all = [torch.cat(parts) for parts in spatial_parts]
        return pooled_all, spatial_all

    # ---- fitting --------------------------------------------------------------------------
    def fit(self, images: Sequence[np.ndarray], progress: Progress, folds: int | None = None) -> FitResult:
        """Fit per-level Gaussians (and the patch map) on good images.

        Held-out scores come from k-fold refits on the cached features, so the
        backbone runs once per image.

        Raises:
            ValueError: with fewer than 10 images or fewer images than folds.
        """
        count = len(images)
        if count < MIN_IMAGES:
            raise ValueError(f"the Gaussian detector needs at least {MIN_IMAGES} good images, got {count}")
        if count < WARN_IMAGES:
            log.warning("only %d reference images: fitting works, but 20 or more give steadier thresholds", count)
        splits = kfold_indices(count, resolve_folds(count, folds))
        pooled, spatial = self._extract(images, progress)
        held_out = np.zeros(count)
        for fold, held in enumerate(splits):
            progress.update(fold, len(splits) + 1, "calibrating (k-fold)")
            train = np.setdiff1d(np.arange(count), held)
            gaussians = [fit_gaussian(level[train]) for level in pooled]
            held_out[held] = self._distances(pooled, gaussians, held)
            if fold == 0:
                self._first_fold = (held, gaussians)
        progress.update(len(splits), len(splits) + 1, "fitting Gaussians")
        self._set_gaussians([fit_gaussian(level) for level in pooled])
        held_out_maps = None
        if self.patch_map is not None:
            held_out_maps = self.patch_map.fit_with_held_out(
                spatial, splits[0], self.preprocessing.image_size, progress)
        progress.update(len(splits) + 1, len(splits) + 1, "done")
        return FitResult(held_out_scores=held_out, held_out_maps=held_out_maps)

    def held_out_twin(self) -> tuple["GaussianDetector", np.ndarray]:
        """A detector fitted without the first calibration fold (sharing the backbone), and that fold.

        Gradient maps of the fold's images through the twin are unbiased samples of good
        maps, for the gradient map's pixel calibration. Available after :meth:`fit`.
        """
        held, gaussians = self._first_fold
        twin = copy.copy(self)
        twin.patch_map = None
        twin._set_gaussians(gaussians)
        return twin, held

    @staticmethod
    def _distances(pooled: list[np.ndarray], gaussians, rows: np.ndarray) -> np.ndarray:
        total = np.zeros(len(rows))
        for features, (mean, precision) in zip(pooled, gaussians):
            centered = features[rows] - mean
            # (x P) . x row by row: one matrix product (BLAS) instead of einsum's unblocked triple loop
            total += np.sqrt(np.clip(((centered @ precision) * centered).sum(1), 0, None))
        return total

    def _set_gaussians(self, gaussians) -> None:
        self.means = [torch.from_numpy(mean).to(self.device) for mean, _ in gaussians]
        self.precisions = [torch.from_numpy(precision).to(self.device) for _, precision in gaussians]

    # ---- scoring --------------------------------------------------------------------------
    def _score_pooled(self, pooled: list[torch.Tensor]) -> torch.Tensor:
        total = torch.zeros(pooled[0].shape[0], dtype=torch.float64, device=self.device)
        for features, mean, precision in zip(pooled, self.means, self.precisions):
            total += mahalanobis(features.double(), mean, precision)
        return total

    def score(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Raw scores: sum over levels of Mahalanobis distances."""
        return self._run(images, with_maps=False)[0]

    def score_and_maps(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores and fast patch maps from one forward pass."""
        return self._run(images, with_maps=self.patch_map is not None)

    def _run(self, images: Sequence[np.ndarray], with_maps: bool):
        if not self.means:
            raise RuntimeError("the detector is not fitted")
        scores, maps = [], []
        with torch.inference_mode():
            for chunk in batches(images, self.batch_size):
                pooled, spatial = self._forward(self.preprocessing.to_tensor(chunk, self.device))
                scores.append(self._score_pooled(pooled).cpu())
                if with_maps:
                    maps.append(self.patch_map.maps(spatial, self.preprocessing.image_size).float().cpu())
        score_array = torch.cat(scores).numpy()
        return score_array, (torch.cat(maps).numpy() if with_maps else None)

    def differentiable_score(self, x: torch.Tensor) -> torch.Tensor:
        """Score of preprocessed inputs, differentiable with respect to ``x`` (float32)."""
        maps = self.net(x, upto=max(self.levels))
        total = x.new_zeros(x.shape[0])
        for level, mean, precision in zip(self.levels, self.means, self.precisions):
            total = total + mahalanobis(maps[level].mean(dim=(2, 3)), mean.float(), precision.float())
        return total

    @property
    def has_maps(self) -> bool:
        """True when a fast patch map is attached."""
        return self.patch_map is not None

    @property
    def backbone_name(self) -> str:
        """Name of the EfficientNet backbone."""
        return self.net.info.name

    @property
    def backbone_sha256(self) -> str:
        """SHA-256 of the backbone's weights file."""
        return self.net.info.weights_sha256

    # ---- state ----------------------------------------------------------------------------
    def config(self) -> dict:
        """Backbone, levels, preprocessing and the patch map's configuration."""
        return {
            "backbone": self.net.info.name,
            "levels": list(self.levels),
            "level_names": [self.net.info.level_names[level] for level in self.levels],
            "distance": "mahalanobis (not squared), summed over levels",
            "preprocessing": self.preprocessing.to_dict(),
            "batch_size": self.batch_size,
            "patch_map": self.patch_map.config() if self.patch_map is not None else None,
        }

    def tensors(self) -> dict[str, torch.Tensor]:
        """Means and precisions per level, plus the patch map's tensors."""
        out: dict[str, torch.Tensor] = {}
        for level, mean, precision in zip(self.levels, self.means, self.precisions):
            out[f"gaussian.level{level}.mean"] = mean
            out[f"gaussian.level{level}.precision"] = precision
        if self.patch_map is not None:
            out.update({f"patch_map.{k}": v for k, v in self.patch_map.tensors().items()})
        return out

    @classmethod
    def from_state(cls, config: dict, tensors: dict[str, torch.Tensor], device: torch.device,
                   weights: str | None = None) -> "GaussianDetector":
        """Rebuild from a model file; the backbone weights come from the installed packages."""
        detector = cls(backbone=config["backbone"], weights=weights,
                       image_size=int(config["preprocessing"]["image_size"]), levels=config["levels"],
                       fast_map=False, batch_size=int(config.get("batch_size", 16)), device=device)
        detector.preprocessing = Preprocessing.from_dict(config["preprocessing"])
        detector.means = [tensors[f"gaussian.level{lvl}.mean"].to(device) for lvl in detector.levels]
        detector.precisions = [tensors[f"gaussian.level{lvl}.precision"].to(device) for lvl in detector.levels]
        if config.get("patch_map"):
            from inspector.detectors.patch_map import PatchMapModel

            prefix = "patch_map."
            own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            detector.patch_map = PatchMapModel.from_state(config["patch_map"], own, device)
        return detector
