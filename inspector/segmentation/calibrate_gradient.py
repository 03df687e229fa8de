"""Pixel statistics of gradient maps, computed once at fit time and stored with the model.

Gradient maps are divided by one per-model gradient scale (so that maps compare
between frames) and normalized with a pixel threshold from held-out good images.
The held-out maps come from the detector's :meth:`~inspector.detectors.base.Detector.held_out_twin`:
for the Gaussian detectors a twin fitted without the first calibration fold; others
hold nothing out and use a few reference images (their maps are then slightly
optimistic, i.e. the pixel threshold errs high).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from inspector.segmentation.gradient import gradient_map, gradient_scale
from inspector.segmentation.pixel_calibration import PixelCalibration, fit_pixel_calibration, normalize_map

SCALE_IMAGES = 10
CALIBRATION_IMAGES = 6


def calibrate_gradient(detector, images: Sequence[np.ndarray],
                       fast_calibration: PixelCalibration | None) -> tuple[dict, PixelCalibration]:
    """The model's gradient scale (as model info) and the gradient maps' pixel calibration."""
    scale = gradient_scale(detector, list(images[:SCALE_IMAGES]))
    source, held = detector.held_out_twin()
    if held is not None:
        sample = [images[i] for i in held[:CALIBRATION_IMAGES]]
    else:
        sample = list(images[:CALIBRATION_IMAGES])
    weights = None
    if fast_calibration is not None and detector.has_maps:
        _, fast = detector.score_and_maps(sample)
        weights = normalize_map(fast, fast_calibration)
    # One descent over the whole sample: a batch of 6 costs about a quarter less than 4 + 2 on a CPU
    # (README, "Fit time"); the maps are the same (the images' scores do not interact).
    maps = gradient_map(source, sample, scale=scale, weight_maps=weights, batch_size=max(1, len(sample)))
    return {"gradient_scale": float(scale)}, fit_pixel_calibration(maps)
