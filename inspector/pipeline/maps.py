"""From a detector's raw maps to :class:`Heatmap` records in each frame's own geometry.

Maps are normalized with the pixel statistics stored in the model (1.0 = the
calibrated pixel threshold), never per image.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from inspector.core.progress import Progress
from inspector.core.records import Heatmap
from inspector.detectors.base import Detector
from inspector.segmentation.geometry import to_frame_geometry
from inspector.segmentation.pixel_calibration import PixelCalibration, normalize_map
from inspector.segmentation.regions import find_regions

SEGMENTERS: dict[str, tuple[str, str]] = {
    "fast": ("has_maps", "patch map from the scoring pass"),
    "gradient": ("supports_gradient", "gradient of the score, weighted by the fast map when there is one"),
}
"""The map methods: name -> (the detector capability that enables it, one line for help texts).
The CLI's ``--segmenter`` choices and a model's ``supported_segmenters`` are derived from it."""


def supported_segmenters(detector: Detector) -> tuple[str, ...]:
    """The map methods ``detector``'s capabilities allow, in :data:`SEGMENTERS` order."""
    return tuple(name for name, (capability, _) in SEGMENTERS.items() if getattr(detector, capability))


def to_heatmaps(images: Sequence[np.ndarray], raw: np.ndarray, method: str,
                calibration: PixelCalibration | None, regions=None) -> list[Heatmap]:
    """Normalized heatmaps with their above-threshold regions, one per image.

    Args:
        images: The frames the maps belong to (their geometry is used).
        raw: Raw maps ``(N, S, S)`` at the detector's input size.
        method: ``"fast"`` or ``"gradient"``.
        calibration: The model's stored pixel statistics for ``method`` (``None``: raw values).
        regions: The model's :class:`~inspector.detectors.regions.RegionMask`: the map is zero
            outside the inspected region (``None``: everywhere inspected).
    """
    heatmaps = []
    for image, values in zip(images, raw):
        if calibration is not None:
            values = normalize_map(values, calibration)
        values = to_frame_geometry(values, image.shape[:2]).astype(np.float32, copy=False)
        if regions is not None:
            values = regions.mask_map(values)
        heatmaps.append(Heatmap(values=values, method=method, regions=find_regions(values)))
    return heatmaps


def gradient_raw_maps(detector: Detector, images: Sequence[np.ndarray], *, scale: float | None,
                      fast_calibration: PixelCalibration | None, fast: Sequence[Heatmap] | None,
                      progress: Progress) -> np.ndarray:
    """Raw gradient maps ``(N, S, S)``, their steps weighted by the normalized fast maps.

    Args:
        detector: A detector with a differentiable score.
        images: The frames.
        scale: The model's stored gradient scale.
        fast_calibration: Pixel statistics of the fast map (``None``: uniform steps).
        fast: The frames' fast heatmaps when they are known already (from the
            inspection pass); else they are computed here, one more forward pass.
        progress: Progress sink (cancellable).
    """
    from inspector.segmentation.gradient import gradient_map

    weights = None
    if detector.has_maps and fast_calibration is not None:
        size = detector.preprocessing.image_size
        if fast is not None and len(fast) == len(images) and all(h.method == "fast" for h in fast):
            # Frame geometry back to the input square: the map the inspection pass already drew.
            weights = np.stack([to_frame_geometry(h.values, (size, size)) for h in fast])
        else:
            _, raw = detector.score_and_maps(images)
            weights = normalize_map(raw, fast_calibration)
    return gradient_map(detector, list(images), scale=scale, weight_maps=weights, progress=progress)
