"""From a model and frames to :class:`Heatmap` records in each frame's own geometry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from inspector.core.progress import Progress
from inspector.core.records import Heatmap
from inspector.segmentation.geometry import to_frame_geometry
from inspector.segmentation.pixel_calibration import normalize_map
from inspector.segmentation.regions import find_regions

if TYPE_CHECKING:
    from inspector.core.model import InspectionModel


def raw_maps(model: "InspectionModel", images: Sequence[np.ndarray], method: str,
             progress: Progress) -> np.ndarray:
    """Raw maps ``(N, S, S)`` at the detector's input size."""
    if method == "fast":
        _, maps = model.detector.score_and_maps(images)
        return maps
    from inspector.segmentation.gradient import gradient_map

    weights = None
    if model.detector.has_maps and "fast" in model.pixel_calibration:
        _, fast = model.detector.score_and_maps(images)
        weights = normalize_map(fast, model.pixel_calibration["fast"])
    return gradient_map(model.detector, list(images), scale=model.info.get("gradient_scale"),
                        weight_maps=weights, progress=progress)


def compute_heatmaps(model: "InspectionModel", images: Sequence[np.ndarray], method: str,
                     progress: Progress) -> list[Heatmap]:
    """Normalized heatmaps with their above-threshold regions, one per image."""
    maps = raw_maps(model, images, method, progress)
    calibration = model.pixel_calibration.get(method)
    heatmaps = []
    for image, raw in zip(images, maps):
        if calibration is not None:
            values = normalize_map(raw, calibration)
        else:
            values = np.asarray(raw, dtype=np.float32)
        values = to_frame_geometry(values, image.shape[:2]).astype(np.float32, copy=False)
        heatmaps.append(Heatmap(values=values, method=method, regions=find_regions(values)))
    return heatmaps
