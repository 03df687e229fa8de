"""The inspection of a fitted model as one traceable torch module: uint8 frames in, decisions and maps out.

It repeats what :meth:`inspector.pipeline.model.InspectionModel.inspect` computes
with the ``fusion`` and ``gaussian`` detectors, written for a static graph:

- preprocessing: ``uint8 NHWC -> float / 255 -> (x - mean) / std`` (as
  :meth:`inspector.backbones.preprocessing.Preprocessing.to_tensor`, after the resize);
- global evidence: per level, the Mahalanobis distance as ``||(x - m) L||`` in float64
  with the precision factor ``L L^T = P`` computed here once (eigendecomposition);
- position evidence: the patch Gaussian's per-cell distance (float32, the detector's
  own formula), standardized per cell, upsampled and smoothed (the one ``grid_to_map``);
- bank evidence: the nearest coreset patch by ``|q|^2 - 2 q B^T + |B|^2`` and a min,
  the same formula as :meth:`inspector.detectors.memory_bank.MemoryBank.distances`;
- local evidence (when fused): the nearest kept patch of the cells around, by the
  detector's own :func:`inspector.detectors.local_bank.nearest_in_window`, standardized per cell;
- fusion, the threshold (float64) and the pixel normalization of the fast map.

The batch axis is never used as a constant, so the exported graph takes any batch size.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from inspector.detectors.patch_map import cell_mahalanobis, stack_pooled_levels
from inspector.detectors.bank_geometry import bank_features
from inspector.detectors.fusion import SPREAD
from inspector.detectors.local_bank import nearest_in_window, window_gathers
from inspector.segmentation.smoothing import grid_to_map

EXPORTABLE_DETECTORS = ("fusion", "gaussian")


def precision_factor(precision: torch.Tensor) -> torch.Tensor:
    """``L`` (float64) with ``L @ L.T == precision``, by symmetric eigendecomposition (negative eigenvalues clipped)."""
    values, vectors = np.linalg.eigh(precision.detach().double().cpu().numpy())
    return torch.from_numpy(vectors * np.sqrt(np.clip(values, 0.0, None)))


class _Gaussians(nn.Module):
    """Sum over levels of Mahalanobis distances of pooled features, in float64."""

    def __init__(self, means, precisions) -> None:
        super().__init__()
        for index, (mean, precision) in enumerate(zip(means, precisions)):
            self.register_buffer(f"mean{index}", mean.detach().double().cpu())
            self.register_buffer(f"factor{index}", precision_factor(precision))
        self.count = len(means)

    def forward(self, pooled: list[torch.Tensor]) -> torch.Tensor:
        total = None
        for index, features in enumerate(pooled):
            projected = (features.double() - getattr(self, f"mean{index}")) @ getattr(self, f"factor{index}")
            distance = (projected * projected).sum(1).sqrt()
            total = distance if total is None else total + distance
        return total


class InspectionGraph(nn.Module):
    """One model's inspection, traceable for ONNX: ``images`` uint8 ``(N, S, S, 3)`` -> a tuple of outputs.

    Outputs: ``raw_score`` (float32), ``score`` (float32), ``anomalous`` (bool) and, when
    the model has a fast map, ``anomaly_map`` (float32 ``(N, S, S)``, normalized when the
    model has pixel statistics for it).

    Args:
        model: A fitted :class:`~inspector.pipeline.model.InspectionModel` with a
            ``fusion`` or ``gaussian`` detector.

    Raises:
        ValueError: for another detector.
    """

    def __init__(self, model) -> None:
        super().__init__()
        detector = model.detector
        if detector.kind not in EXPORTABLE_DETECTORS:
            raise ValueError(f"the {detector.kind} detector cannot be exported to ONNX; exportable detectors: "
                             f"{', '.join(EXPORTABLE_DETECTORS)}")
        prep = detector.preprocessing
        self.size = int(prep.image_size)
        self.kind = detector.kind
        self.register_buffer("pixel_mean", torch.tensor(prep.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("pixel_std", torch.tensor(prep.std, dtype=torch.float32).view(1, 3, 1, 1))
        self.net = copy.deepcopy(detector.net).cpu().eval()
        self.levels = tuple(detector.levels)
        self.gaussians = _Gaussians(detector.means, detector.precisions)
        patch_map = detector.patch_map
        self.has_map = patch_map is not None
        deepest = max(self.levels)
        if self.has_map:
            self.map_levels = tuple(patch_map.levels)
            self.pool, self.sigma = int(patch_map.pool), float(patch_map.sigma)
            self.register_buffer("patch_mean", patch_map.mean.detach().float().cpu())
            self.register_buffer("patch_precision", patch_map.precision.detach().float().cpu())
            deepest = max(deepest, *self.map_levels)
        self.deepest = deepest
        self.register_buffer("threshold", torch.tensor(float(model.threshold), dtype=torch.float64))
        pixel = model.pixel_calibration.get("fast") if self.has_map else None
        self.map_normalized = pixel is not None
        if pixel is not None:
            self.pixel_floor = float(np.float32(pixel.floor))
            self.pixel_scale = float(np.float32(pixel.threshold - pixel.floor))
        if self.kind == "fusion":
            self._init_fusion(detector)

    def _init_fusion(self, detector) -> None:
        self.components = tuple(detector.components)
        self.norms = {c: (float(m), float(s)) for c, (m, s) in detector.norms.items()}
        self.register_buffer("position_mean", detector.position_mean.detach().float().cpu())
        self.register_buffer("position_std", detector.position_std.detach().float().cpu())
        self.use_bank = "bank" in self.components
        self.use_local = "local" in self.components
        if self.use_bank or self.use_local:
            self.bank_stride = int(detector.bank_stride)
            grid = detector.position_mean.shape[-2:]
            weights = detector.bank_weights(torch.zeros(1, 1, *grid, device=detector.position_mean.device))
            self.bank_shrink = weights is not None
            if weights is not None:
                self.register_buffer("bank_border", weights.detach().float().cpu().contiguous())
        if self.use_local:
            local = detector.local
            kept, norms = local.searchable()
            self.local_radius = int(local.radius)
            self.register_buffer("local_mean", local.mean.detach().float().cpu())
            self.register_buffer("local_projection", local.projection.detach().float().cpu())
            self.register_buffer("local_bank", kept.detach().float().cpu().contiguous())
            self.register_buffer("local_norms", norms.detach().float().cpu().contiguous())
            windows, back = window_gathers(kept.shape[0], kept.shape[1], self.local_radius)
            self.register_buffer("local_windows", windows)
            self.register_buffer("local_back", back)
            self.register_buffer("local_cell_mean", local.cell_mean.detach().float().cpu())
            self.register_buffer("local_cell_std", local.cell_std.detach().float().cpu())
        if self.use_bank:
            bank = detector.bank
            self.register_buffer("bank_mean", bank.mean.detach().float().cpu())
            self.register_buffer("bank_projection", bank.projection.detach().float().cpu())
            self.register_buffer("bank", bank.bank.detach().float().cpu().contiguous())
            self.register_buffer("bank_norms", (self.bank * self.bank).sum(1))
            grid = detector.position_mean.shape[-2:]
            side = 2 if self.bank_stride == 16 else 1
            edge = detector.edge_map(grid[0] // side, grid[1] // side)
            self.bank_edge = edge is not None
            if edge is not None:
                self.register_buffer("bank_edge_map", edge.detach().float().cpu().contiguous())
        wanted = [c for c in ("position", "bank") if c in self.components]
        self.map_components = tuple(wanted) or ("position",)
        self.map_weights = detector.map_weights(self.map_components)

    # ---- pieces ---------------------------------------------------------------------------
    def _features(self, spatial: list[torch.Tensor]) -> torch.Tensor:
        """The patch map's pooled multi-level features (as :meth:`PatchMapModel.features`)."""
        return stack_pooled_levels(spatial, self.pool)

    def _patch_grid(self, features: torch.Tensor) -> torch.Tensor:
        """Per-cell Mahalanobis distance ``(N, h, w)`` (as :meth:`PatchMapModel.grids_from_features`)."""
        return cell_mahalanobis(features, self.patch_mean, self.patch_precision)

    def _bank_input(self, features: torch.Tensor) -> torch.Tensor:
        """The bank's patches (border-shrunk, stride 8 or 16), as :func:`inspector.detectors.bank_geometry.bank_features`."""
        return bank_features(features, self.bank_stride, self.bank_border if self.bank_shrink else None)

    def _local_grid(self, pooled: torch.Tensor) -> torch.Tensor:
        """Per-cell standardized distance of bank inputs (:meth:`_bank_input`) to the nearest kept
        patch of the cells around (as :meth:`inspector.detectors.local_bank.LocalBank.distances`)."""
        queries = (pooled.permute(0, 2, 3, 1) - self.local_mean) @ self.local_projection
        grid = nearest_in_window(queries, self.local_bank, self.local_norms, self.local_radius,
                                 (self.local_windows, self.local_back))
        return (grid - self.local_cell_mean) / self.local_cell_std

    def _bank_grid(self, pooled: torch.Tensor) -> torch.Tensor:
        """Distance of each bank input (:meth:`_bank_input`) to its nearest bank patch, rescaled
        by its distance to the frame's edge."""
        height, width = pooled.shape[-2], pooled.shape[-1]
        queries = (pooled.flatten(2).transpose(1, 2) - self.bank_mean) @ self.bank_projection
        # The query's own norm is added after the minimum over the bank (it does not change which is nearest).
        squared = (self.bank_norms - 2.0 * queries @ self.bank.T).amin(-1) + (queries * queries).sum(-1)
        grid = squared.clamp_min(0).sqrt().reshape(-1, height, width)
        return grid * self.bank_edge_map if self.bank_edge else grid

    def _standardize(self, component: str, values: torch.Tensor) -> torch.Tensor:
        mean, std = self.norms[component]
        return (values - mean) / std

    # ---- the graph ------------------------------------------------------------------------
    def forward(self, images: torch.Tensor):
        x = images.permute(0, 3, 1, 2).float() / 255.0
        x = (x - self.pixel_mean) / self.pixel_std
        maps = self.net(x, upto=self.deepest)
        pooled = [maps[level].mean(dim=(2, 3)) for level in self.levels]
        global_score = self.gaussians(pooled)
        anomaly_map = None
        if self.kind == "fusion":
            raw, anomaly_map = self._fusion(global_score, [maps[level] for level in self.map_levels])
        else:
            raw = global_score
            if self.has_map:
                features = self._features([maps[level] for level in self.map_levels])
                anomaly_map = grid_to_map(self._patch_grid(features), self.size, self.sigma)
        outputs = (raw.float(), (raw / self.threshold).float(), raw > self.threshold)
        if anomaly_map is None:
            return outputs
        if self.map_normalized:
            anomaly_map = ((anomaly_map - self.pixel_floor) / self.pixel_scale).clamp_min(0.0)
        return outputs + (anomaly_map,)

    def _fusion(self, global_score: torch.Tensor, spatial: list[torch.Tensor]):
        features = self._features(spatial)
        grid = (self._patch_grid(features) - self.position_mean) / self.position_std
        component_maps = {"position": grid_to_map(grid, self.size, self.sigma)}
        if self.use_bank or self.use_local:
            pooled = self._bank_input(features)  # shared by both banks
            if self.use_bank:
                component_maps["bank"] = grid_to_map(self._bank_grid(pooled), self.size, self.sigma)
            if self.use_local:
                component_maps["local"] = grid_to_map(self._local_grid(pooled), self.size, self.sigma)
        evidence = {"global": global_score}
        # The peak as a max over the flattened map: OpenVINO's CPU plugin (2026.4) returned zeros for every
        # frame after the first of a batch from amax over axes (1, 2) followed by the cast to float64.
        evidence.update({c: m.flatten(1).amax(1) for c, m in component_maps.items()})
        z = torch.stack([self._standardize(c, evidence[c].double()) for c in self.components])
        raw = (1.0 + z.mean(0) / SPREAD).clamp_min(1e-6)
        fused = sum(self.map_weights[c] * self._standardize(c, component_maps[c]) for c in self.map_components)
        return raw, fused
