"""The default detector: global and patch-level evidence from one forward pass, fused.

Four kinds of evidence come from the same EfficientNet pass (all four by default):

- **global**: the Gaussian detector's score, the sum over levels of Mahalanobis
  distances of pooled features (Rippel et al., 2020): overall appearance;
- **position**: a Gaussian per grid position with a shared covariance on the
  stride-8/16 patch features (:mod:`inspector.detectors.patch_map`), each cell's
  distance standardized by that cell's mean and spread over the reference images,
  so that busy places of an aligned part do not drown quiet ones: catches what is
  wrong *for its place* (a hole where none belongs);
- **bank**: the distance of each stride-16 patch (2x2 average of the stride-8
  patch features) to its nearest neighbour in a coreset of good patches
  (:mod:`inspector.detectors.memory_bank`), blind to place: catches patches unlike
  any good patch anywhere (textures, unaligned parts). Border
  cells are shrunk by the share of their pooling window inside the frame (as
  PatchCore's zero-padded 3x3 pooling does): a border or corner patch can only be
  matched by the few border patches of the references, so without the shrink the
  largest distance of a good image sits on its border and hides the defects
  (README, "Evaluation on data this project did not make"). What remains of that
  (edge cells are still matched by fewer references' cells) is taken out by
  rescaling the cells near the edge so that the held-out references' mean
  distance is the same at every depth from the edge;
- **local** (a default since its calibration was made honest; README says why): the
  distance of each bank patch to its nearest neighbour among the
  references' patches of the same cell and the cells up to two away
  (:mod:`inspector.detectors.local_bank`), standardized per cell: place and
  variety at once (a good patch in the wrong place; a place good parts show in
  several ways). Drawn in the score, not in the fast map.

The patch evidences are maps (upsampled, smoothed) and contribute their
maximum. Each evidence is standardized with the mean and standard deviation of its
*held-out* values (k-fold: every reference image scored by models fitted without
its fold), and the raw score is ``1 + mean(z) / 3``: about 1 for a typical good
part. The fast map is a weighted mean of the standardized position and bank maps,
the same evidence drawn as a map; the bank map weighs more (``map_bank_weight``), because the
per-position map of an unaligned texture is noisy on good pixels. The choice of
components and of the weight was made on the benchmark suite (README).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from inspector.core.progress import Progress
from inspector.detectors.bank_geometry import BANK_STRIDE, bank_features, border_weights, depth_factors, edge_classes
from inspector.detectors.base import FitResult, batches, kfold_indices, register, resolve_folds
from inspector.detectors.gaussian import ALL_LEVELS, MIN_IMAGES, WARN_IMAGES, GaussianDetector, log
from inspector.detectors.gaussian_fit import fit_gaussian
from inspector.detectors.local_bank import KEEP as LOCAL_KEEP, RADIUS as LOCAL_RADIUS, LocalBank
from inspector.detectors.fusion_state import restore_state, state_tensors, stored_options
from inspector.detectors.memory_bank import CORESET, DIMENSIONS, MemoryBank
from inspector.detectors.patch_map import PatchMapModel
from inspector.segmentation.smoothing import grid_to_map

COMPONENTS = ("global", "position", "bank", "local")
DEFAULT_COMPONENTS = ("global", "position", "bank", "local")
THREE_COMPONENTS = ("global", "position", "bank")
"""The default before ``local`` joined it (and what model files from before have)."""
SPREAD = 3.0
_MAP_COMPONENTS = ("position", "bank")
BANK_BORDER = "shrink"
BANK_BORDERS = ("shrink", "none")
# Bank distances are rescaled per distance to the frame's edge (in cells, up to this depth) so that
# the held-out references' mean distance is the same at every depth (see edge_classes).
BANK_EDGE = 2
MAP_BANK_WEIGHT = 0.75
"""The bank map's share of the fast map (the position map has the rest), chosen on the suite's tuning halves."""
POSITION_SAMPLE = 100
"""Training images (spread over the fold) whose cell distances give a fold's position statistics
(the final model's come from every reference; README, "Fit time")."""
MIN_IMAGE_SIZE = 256
"""The smallest default input side: the suite's tuning halves chose 256 px over Lite0's native 224
(finer patch cells; README, "Evaluation on data this project did not make"). A backbone with a
larger convention keeps its own; an explicit ``image_size`` always wins."""


@register
class FusionDetector(GaussianDetector):
    """Global Gaussian + per-position patch Gaussian + patch memory bank, fused on held-out statistics.

    Args:
        backbone, weights, levels, batch_size, device: as for
            :class:`~inspector.detectors.gaussian.GaussianDetector`.
        image_size: Input size; by default the backbone's native size, but at least
            :data:`MIN_IMAGE_SIZE` (256).
        components: Which evidences to fuse (a subset of ``global``, ``position``, ``bank``, ``local``).
        bank_coreset: Coreset size of the memory bank.
        bank_dimensions: Principal components of the bank's features.
        bank_stride: 16 (2x2 averages of the stride-8 patch features; default) or 8 (each stride-8 patch).
        bank_border: ``shrink`` border cells (default) or ``none`` (model files before the option).
        bank_edge: Rescale bank distances of the cells up to this many cells from the frame's
            edge by factors measured on held-out references (default 2; 0: off, model files
            before the option).
        map_bank_weight: The bank map's share of the fast map, between 0 and 1 (the position
            map has the rest; default 0.75, model files before the option 0.5). Only the map
            changes: the score takes each evidence's peak.
        local_radius: Cells around a patch's own cell searched by the ``local`` evidence.
        local_keep: Patches the ``local`` evidence keeps per cell.
    """

    kind = "fusion"

    @classmethod
    def default_image_size(cls, backbone: str) -> int:
        """The backbone's own input size, but at least :data:`MIN_IMAGE_SIZE`."""
        return max(super().default_image_size(backbone), MIN_IMAGE_SIZE)

    def __init__(self, backbone: str = "lite0", weights: str | None = None, image_size: int | None = None,
                 levels: Sequence[int] = ALL_LEVELS, batch_size: int = 16, device: torch.device | str | None = None,
                 components: Sequence[str] = DEFAULT_COMPONENTS, bank_coreset: int = CORESET,
                 bank_dimensions: int = DIMENSIONS, bank_stride: int = BANK_STRIDE,
                 bank_border: str = BANK_BORDER, bank_edge: int = BANK_EDGE,
                 map_bank_weight: float = MAP_BANK_WEIGHT, local_radius: int = LOCAL_RADIUS,
                 local_keep: int = LOCAL_KEEP, _net=None) -> None:
        super().__init__(backbone, weights, image_size, levels, fast_map=True, batch_size=batch_size,
                         device=device, _net=_net)
        unknown = set(components) - set(COMPONENTS)
        if unknown or not components:
            raise ValueError(f"components must be a non-empty subset of {', '.join(COMPONENTS)}")
        self.components = tuple(c for c in COMPONENTS if c in components)
        if int(bank_stride) not in (8, 16):
            raise ValueError("bank_stride must be 8 or 16")
        if bank_border not in BANK_BORDERS:
            raise ValueError(f"bank_border must be one of {', '.join(BANK_BORDERS)}")
        if int(bank_edge) < 0:
            raise ValueError("bank_edge must be 0 (off) or a number of cells")
        if not 0.0 <= float(map_bank_weight) <= 1.0:
            raise ValueError("map_bank_weight must be between 0 and 1")
        self.map_bank_weight = float(map_bank_weight)
        self.bank_stride = int(bank_stride)
        self.bank_border = bank_border
        self.bank_edge = int(bank_edge)
        self._border_weights: torch.Tensor | None = None
        self.edge_factors: torch.Tensor | None = None    # (bank_edge + 1,) once fitted
        self._edge_map: torch.Tensor | None = None
        self.bank = MemoryBank(dimensions=bank_dimensions, coreset=bank_coreset, device=self.device)
        self.local = LocalBank(radius=local_radius, keep=local_keep, dimensions=bank_dimensions, device=self.device)
        self.position_sample = POSITION_SAMPLE  # a fit-time cost knob, not stored in the model file
        self.position_mean: torch.Tensor | None = None   # (h, w)
        self.position_std: torch.Tensor | None = None    # (h, w)
        self.norms: dict[str, tuple[float, float]] = {}  # component -> held-out (mean, std)

    # ---- evidence -------------------------------------------------------------------------
    def _position_map(self, features: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        grid = (self.patch_map.grids_from_features(features) - mean) / std
        return grid_to_map(grid, self.preprocessing.image_size, self.patch_map.sigma)

    def bank_weights(self, features: torch.Tensor) -> torch.Tensor | None:
        """The border factors for features of this grid size (``None`` without the shrink)."""
        if self.bank_border != "shrink":
            return None
        height, width = features.shape[-2:]
        cached = self._border_weights
        if cached is None or cached.shape[-2:] != (height, width) or cached.device != features.device:
            strides = [self.net.info.level_strides[level] for level in self.patch_map.levels]
            cached = border_weights(height, width, self.patch_map.channels,
                                    [s // strides[0] for s in strides], self.patch_map.pool).to(features.device)
            self._border_weights = cached
        return cached

    def _bank_input(self, features: torch.Tensor) -> torch.Tensor:
        return bank_features(features, self.bank_stride, self.bank_weights(features))

    def edge_map(self, height: int, width: int) -> torch.Tensor | None:
        """``(h, w)`` factors of the bank grid by distance to the frame's edge (``None`` when off or not fitted)."""
        if self.edge_factors is None:
            return None
        cached = self._edge_map
        if cached is None or cached.shape != (height, width) or cached.device != self.edge_factors.device:
            classes = edge_classes(height, width, len(self.edge_factors) - 1).to(self.edge_factors.device)
            cached = self._edge_map = self.edge_factors[classes]
        return cached

    def _bank_grid(self, features: torch.Tensor, exclude: np.ndarray | None = None) -> torch.Tensor:
        return self._bank_grid_of(self._bank_input(features), exclude)

    def _bank_grid_of(self, inputs: torch.Tensor, exclude: np.ndarray | None = None) -> torch.Tensor:
        """The edge-rescaled bank distances of bank inputs already computed (:meth:`_bank_input`)."""
        grid = self.bank.distances(inputs, exclude)
        factors = self.edge_map(*grid.shape[-2:])
        return grid if factors is None else grid * factors

    def _bank_map(self, features: torch.Tensor, exclude: np.ndarray | None = None) -> torch.Tensor:
        return grid_to_map(self._bank_grid(features, exclude), self.preprocessing.image_size, self.patch_map.sigma)

    def _held_out_bank_grids(self, features: torch.Tensor, partition: Sequence[np.ndarray]) -> torch.Tensor:
        """``(N, h, w)`` each reference's bank distances without its own set's patches (no edge factors)."""
        self.edge_factors, self._edge_map = None, None
        grids = None
        for rows in partition:
            index = torch.as_tensor(rows)
            grid = self._bank_grid(features[index], exclude=rows)
            if grids is None:
                grids = torch.empty((len(features), *grid.shape[1:]), dtype=grid.dtype, device=grid.device)
            grids[index.to(grid.device)] = grid
        return grids

    def _fit_edge_factors(self, grids: torch.Tensor) -> None:
        """Edge factors (:func:`~inspector.detectors.bank_geometry.depth_factors`) from the
        references' held-out bank distances (:meth:`_held_out_bank_grids`)."""
        self.edge_factors, self._edge_map = None, None
        if self.bank_edge and "bank" in self.components:
            self.edge_factors = depth_factors(grids.double().mean(0), self.bank_edge).float()

    def _bank_grids(self, features: torch.Tensor, exclude: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """The grids of the banks used (``bank``, ``local``) of a batch of patch features."""
        banks = [c for c in ("bank", "local") if c in self.components]
        if not banks:
            return {}
        inputs = self._bank_input(features)  # shared by both banks
        out = {}
        if "bank" in banks:
            out["bank"] = self._bank_grid_of(inputs, exclude)
        if "local" in banks:
            out["local"] = self.local.distances(inputs, exclude)
        return out

    def _maps(self, features: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
              grids: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The position map of ``features`` and the maps of bank ``grids`` (upsampled, smoothed)."""
        size, sigma = self.preprocessing.image_size, self.patch_map.sigma
        return {"position": self._position_map(features, mean, std),
                **{c: grid_to_map(grid, size, sigma) for c, grid in grids.items()}}

    def _patch_maps(self, features: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                    exclude: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """The position map, and the bank maps of the banks used, of a batch of patch features."""
        return self._maps(features, mean, std, self._bank_grids(features, exclude))

    def _held_grids(self, bank_grids: torch.Tensor | None, held: np.ndarray) -> dict[str, torch.Tensor]:
        """The fit's own held-out bank and local grids of calibration fold ``held``."""
        out = {}
        if bank_grids is not None:
            grid = bank_grids[torch.as_tensor(held).to(bank_grids.device)]
            factors = self.edge_map(*grid.shape[-2:])
            out["bank"] = grid if factors is None else grid * factors
        if "local" in self.components:
            out["local"] = self.local.held_out(held)
        return out

    @staticmethod
    def _peaks(maps: torch.Tensor) -> torch.Tensor:
        """``(N,)`` the evidence a patch map ``(N, H, W)`` gives its image: its largest value."""
        return maps.amax((1, 2))

    def _standardize(self, component: str, values: torch.Tensor) -> torch.Tensor:
        mean, std = self.norms[component]
        return (values - mean) / std

    def _fuse(self, evidence: dict[str, torch.Tensor]) -> torch.Tensor:
        z = torch.stack([self._standardize(c, evidence[c].double()) for c in self.components])
        return (1.0 + z.mean(0) / SPREAD).clamp_min(1e-6)

    def map_weights(self, components: Sequence[str]) -> dict[str, float]:
        """The share of each of ``components`` (patch maps) in the fast map; a map alone is the map."""
        present = [c for c in _MAP_COMPONENTS if c in components]
        if len(present) < 2:
            return {c: 1.0 for c in present}
        return {"position": 1.0 - self.map_bank_weight, "bank": self.map_bank_weight}

    def _fused_map(self, maps: dict[str, torch.Tensor]) -> torch.Tensor | None:
        weights = self.map_weights(list(maps))
        if not weights:
            return None
        return sum(weights[c] * self._standardize(c, maps[c]) for c in weights)

    # ---- fitting --------------------------------------------------------------------------
    def fit(self, images: Sequence[np.ndarray], progress: Progress, folds: int | None = None) -> FitResult:
        """Fit all evidences on good images and standardize them on k-fold held-out values.

        The backbone runs once per image; every held-out value comes from models
        fitted without the image's fold (the bank leaves the fold's patches out).

        Raises:
            ValueError: with fewer than 10 images or fewer images than folds.
        """
        return self.fit_extracted(*self._extract(images, progress), progress, folds)

    def fit_extracted(self, pooled: list[np.ndarray], spatial: list[torch.Tensor], progress: Progress,
                      folds: int | None = None, on_fold=None) -> FitResult:
        """:meth:`fit` on backbone outputs already extracted (:meth:`extract`), e.g. cached for many refits.

        ``on_fold(held, evidence)``, when given, is called inside each fold with the
        held-out rows and a function ``evidence(pooled, spatial)`` returning the raw
        evidences (``{component: (N,) array}``) of other images under that fold's
        model: what a cross-conformal estimate needs (:mod:`inspector.evaluation.coverage`).
        """
        count = len(pooled[0])
        if count < MIN_IMAGES:
            raise ValueError(f"the {self.kind} detector needs at least {MIN_IMAGES} good images, got {count}")
        if count < WARN_IMAGES:
            log.warning("only %d reference images: fitting works, but 20 or more give steadier thresholds", count)
        splits = kfold_indices(count, resolve_folds(count, folds))
        steps = len(splits) + 3
        with torch.inference_mode():
            features = torch.cat([self.patch_map.features([m[i:i + 32] for m in spatial])
                                  for i in range(0, count, 32)])
            progress.update(0, steps, "building the patch memory bank")
            flat = self._bank_input(features) if {"bank", "local"} & set(self.components) else None
            if "bank" in self.components:
                cells = flat.shape[2] * flat.shape[3]
                sources = torch.arange(count).repeat_interleave(cells)
                self.bank.fit(flat.permute(0, 2, 3, 1).reshape(-1, flat.shape[1]), sources)
                progress.update(0, steps, "rescaling edge distances")
                bank_grids = self._held_out_bank_grids(features, splits)
                self._fit_edge_factors(bank_grids)
            else:
                bank_grids = None
            if "local" in self.components:
                progress.update(0, steps, "building the per-cell patch banks")
                self.local.fit(flat, partition=splits)
            del flat
            fold_stats = [PatchMapModel.statistics_of(features[torch.as_tensor(held)]) for held in splits]
            total = tuple(sum(parts) for parts in zip(*fold_stats))
            held_out = {c: np.zeros(count) for c in COMPONENTS}
            first_maps: dict[str, torch.Tensor] = {}
            for fold, held in enumerate(splits):
                progress.update(fold + 1, steps, "calibrating (k-fold)")
                train = np.setdiff1d(np.arange(count), held)
                gaussians = [fit_gaussian(level[train]) for level in pooled]
                held_out["global"][held] = self._distances(pooled, gaussians, held)
                if fold == 0:
                    self._first_fold = (held, gaussians)
                self.patch_map.set_statistics(*(a - b for a, b in zip(total, fold_stats[fold])))
                mean, std = self._position_statistics(features[torch.as_tensor(_spread(train, self.position_sample))])
                fold_maps = self._maps(features[torch.as_tensor(held)], mean, std, self._held_grids(bank_grids, held))
                for component, values in fold_maps.items():
                    held_out[component][held] = self._peaks(values).double().cpu().numpy()
                if fold == 0:
                    first_maps = {component: values.cpu() for component, values in fold_maps.items()}
                if on_fold is not None:
                    on_fold(held, lambda p, s, g=gaussians, m=mean, d=std, h=held: self._fold_evidence(p, s, g, m, d, h))
            progress.update(len(splits) + 1, steps, "fitting the final model")
            self._set_gaussians([fit_gaussian(level) for level in pooled])
            self.patch_map.set_statistics(*total)
            self.position_mean, self.position_std = self._position_statistics(features)
            self.local.release_references()
            del bank_grids
        # Every evidence but an unused local bank (whose values were never computed) is standardized:
        # the fast map falls back on the position map when no patch evidence is fused.
        normed = [c for c in COMPONENTS if c != "local" or c in self.components]
        self.norms = {c: (float(np.mean(held_out[c])), float(max(np.std(held_out[c]), 1e-9))) for c in normed}
        fused = self._fuse({c: torch.from_numpy(held_out[c]) for c in self.components}).numpy()
        maps = self._fused_map({c: first_maps[c] for c in _MAP_COMPONENTS if c in self.components}
                               or {"position": first_maps["position"]})
        progress.update(steps, steps, "done")
        return FitResult(held_out_scores=fused, held_out_maps=maps.numpy().astype(np.float32, copy=False))

    def _fold_evidence(self, pooled: list[np.ndarray], spatial: list[torch.Tensor], gaussians,
                       mean: torch.Tensor, std: torch.Tensor, held: np.ndarray) -> dict[str, np.ndarray]:
        """Raw evidences of other images under the fold model now set (its Gaussians, cell statistics, bank)."""
        rows = np.arange(len(pooled[0]))
        out = {c: np.zeros(len(rows)) for c in COMPONENTS}
        out["global"] = self._distances(pooled, gaussians, rows)
        for start in range(0, len(rows), 64):
            part = slice(start, start + 64)
            features = self.patch_map.features([m[part] for m in spatial])
            for component, values in self._patch_maps(features, mean, std, exclude=held).items():
                out[component][part] = self._peaks(values).double().cpu().numpy()
        return out

    def fuse_evidence(self, evidence: dict[str, np.ndarray]) -> np.ndarray:
        """The fused raw score of raw evidences (as :meth:`_fold_evidence` returns them)."""
        return self._fuse({c: torch.from_numpy(np.asarray(v, dtype=np.float64)) for c, v in evidence.items()}).numpy()

    def _position_statistics(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and spread of each cell's distance over ``features`` under the current patch Gaussian."""
        total, squares, count = None, None, 0
        for start in range(0, len(features), 64):
            grid = self.patch_map.grids_from_features(features[start:start + 64]).double()
            total = grid.sum(0) if total is None else total + grid.sum(0)
            squares = (grid ** 2).sum(0) if squares is None else squares + (grid ** 2).sum(0)
            count += len(grid)
        mean = total / count
        std = (squares / count - mean ** 2).clamp_min(0).sqrt()
        floor = std.mean().clamp_min(1e-6) * 0.1
        return mean.float(), torch.maximum(std, floor).float()

    # ---- scoring --------------------------------------------------------------------------
    def extract(self, images: Sequence[np.ndarray], progress: Progress | None = None):
        """Backbone outputs of images (pooled per level, spatial maps) for :meth:`fit_extracted` / :meth:`score_extracted`."""
        return self._extract(images, progress)

    def score_extracted(self, pooled: list[np.ndarray], spatial: list[torch.Tensor]) -> np.ndarray:
        """Scores from :meth:`extract` outputs (the same numbers as :meth:`score` on the images)."""
        scores = []
        with torch.inference_mode():
            for start in range(0, len(pooled[0]), self.batch_size):
                rows = slice(start, start + self.batch_size)
                part = [torch.from_numpy(level[rows]).to(self.device) for level in pooled]
                scores.append(self._evaluate(part, [m[rows] for m in spatial], False)[0].cpu())
        return torch.cat(scores).numpy()

    def _run(self, images: Sequence[np.ndarray], with_maps: bool):
        if not self.means or not self.norms:
            raise RuntimeError("the detector is not fitted")
        scores, maps = [], []
        with torch.inference_mode():
            for chunk in batches(images, self.batch_size):
                pooled, spatial = self._forward(self.preprocessing.to_tensor(chunk, self.device))
                score, fused = self._evaluate(pooled, spatial, with_maps)
                scores.append(score.cpu())
                if with_maps:
                    maps.append(fused.float().cpu())
        score_array = torch.cat(scores).numpy()
        return score_array, (torch.cat(maps).numpy() if with_maps else None)

    def _evaluate(self, pooled: list[torch.Tensor], spatial: list[torch.Tensor], with_maps: bool):
        """Fused scores (and the fused map) of one batch of backbone outputs."""
        features = self.patch_map.features(spatial)
        component_maps = self._patch_maps(features, self.position_mean, self.position_std)
        evidence = {"global": self._score_pooled(pooled)}
        evidence.update({c: self._peaks(m) for c, m in component_maps.items()})
        fused_map = None
        if with_maps:
            used = {c: m for c, m in component_maps.items() if c in self.components} or component_maps
            fused_map = self._fused_map(used)
        return self._fuse(evidence), fused_map

    # ---- state ----------------------------------------------------------------------------
    def config(self) -> dict:
        """The Gaussian detector's configuration plus the fusion's components and statistics."""
        out = super().config()
        out.update({
            "components": list(self.components),
            "fusion": f"1 + mean of held-out-standardized evidences / {SPREAD:g}",
            "norms": {c: list(v) for c, v in self.norms.items()},
            "bank": {**self.bank.config(), "stride": self.bank_stride, "border": self.bank_border,
                     "edge": self.bank_edge},
            "map_bank_weight": self.map_bank_weight,
        })
        if "local" in self.components:
            out["local_bank"] = self.local.config()
        return out

    def tensors(self) -> dict[str, torch.Tensor]:
        """Gaussian and patch-map tensors, per-cell statistics and the memory banks."""
        return {**super().tensors(), **state_tensors(self)}

    @classmethod
    def from_state(cls, config: dict, tensors: dict[str, torch.Tensor], device: torch.device,
                   weights: str | None = None) -> "FusionDetector":
        """Rebuild from a model file; the backbone weights come from the installed packages."""
        detector = cls(backbone=config["backbone"], weights=weights,
                       image_size=int(config["preprocessing"]["image_size"]), levels=config["levels"],
                       batch_size=int(config.get("batch_size", 16)), device=device,
                       components=config["components"], **stored_options(config))
        restore_state(detector, config, tensors, device)
        return detector


def _spread(rows: np.ndarray, most: int) -> np.ndarray:
    """``rows`` itself, or ``most`` of them evenly spread over it."""
    if len(rows) <= most:
        return rows
    return rows[np.unique(np.linspace(0, len(rows) - 1, most).round().astype(int))]
