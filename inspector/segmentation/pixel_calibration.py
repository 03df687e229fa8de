"""The pixel threshold of anomaly maps, from held-out good images, and map normalization.

Maps are normalized with these stored statistics only, never per image:
``(raw - floor) / (threshold - floor)`` clipped at 0, so 0 is a typical good
pixel and 1.0 is the calibrated pixel threshold.

Threshold rule: the 99th percentile of the held-out good images' per-image
maxima (for up to 100 held-out images, practically their largest value). It
reads "a contour means the map went higher than on (nearly) any held-out good
image". Measured on the synthetic set (Lite0, 224, 100 reference images, 20 held
out; brick/grass/gravel at seeds 0 and 1 plus an aligned-part set, test images
resized to 256): 4.5 % of good test images show a region (>= 16 px) and 69 %
of defective ones a region on the defect. Rules tried: pooled 99.9th
percentile of held-out pixels 62 % / 85 %; pooled 99.99th 16 % / 72 %; max of
per-image 99th percentiles 88 % / 92 %; max of per-image 99.9th 15 % / 72 %;
90th percentile of maxima 18 % / 73 %. A smoothed map's pixels are strongly
correlated, so pooled pixel percentiles say little about whole images; the
per-image maximum is the statistic that decides whether a good frame shows a
contour, and a good frame showing contours teaches the operator to ignore them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAXIMA_PERCENTILE = 99.0


@dataclass(frozen=True)
class PixelCalibration:
    """Stored pixel statistics of held-out good maps.

    Attributes:
        floor: Median raw value of held-out good pixels (maps to 0).
        threshold: Raw pixel threshold (maps to 1.0).
    """

    floor: float
    threshold: float

    def to_dict(self) -> dict:
        """JSON-ready form for the model file."""
        return {"floor": float(self.floor), "threshold": float(self.threshold)}

    @classmethod
    def from_dict(cls, data: dict) -> PixelCalibration:
        """Inverse of :meth:`to_dict`."""
        return cls(floor=float(data["floor"]), threshold=float(data["threshold"]))


def fit_pixel_calibration(held_out_maps: np.ndarray,
                          maxima_percentile: float = MAXIMA_PERCENTILE) -> PixelCalibration:
    """Floor and threshold from raw maps of held-out good images.

    Args:
        held_out_maps: Raw maps ``(N, H, W)`` of good images the map model did not fit on.
        maxima_percentile: Percentile of the per-image maxima taken as the threshold.

    Returns:
        The calibration; the threshold is kept strictly above the floor.

    Raises:
        ValueError: for an empty or non-finite set of maps.
    """
    maps = np.asarray(held_out_maps, dtype=np.float64)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.size == 0 or not np.isfinite(maps).all():
        raise ValueError("pixel calibration needs at least one finite held-out map")
    floor = float(np.median(maps))
    threshold = float(np.percentile(maps.reshape(len(maps), -1).max(axis=1), maxima_percentile))
    if threshold <= floor:
        threshold = floor + max(abs(floor) * 1e-3, 1e-6)
    return PixelCalibration(floor=floor, threshold=threshold)


def normalize_map(raw: np.ndarray, calibration: PixelCalibration) -> np.ndarray:
    """``(raw - floor) / (threshold - floor)`` clipped at 0, as float32; 1.0 = pixel threshold."""
    scale = calibration.threshold - calibration.floor
    out = (np.asarray(raw, dtype=np.float32) - np.float32(calibration.floor)) / np.float32(scale)
    return np.clip(out, 0.0, None, out=out)
