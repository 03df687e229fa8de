"""Connected above-threshold regions of a normalized heatmap."""

from __future__ import annotations

import cv2
import numpy as np

from inspector.core.records import Region

DEFAULT_MIN_AREA = 16


def find_regions(normalized_map: np.ndarray, threshold: float = 1.0,
                 min_area: int = DEFAULT_MIN_AREA) -> tuple[Region, ...]:
    """Regions where the map reaches ``threshold``, strongest first.

    Pixels are 8-connected. Regions smaller than ``min_area`` pixels are dropped:
    at the frame's resolution a smoothed map cannot produce a real region of a
    few pixels, so those are threshold noise.

    Args:
        normalized_map: ``HxW`` map normalized with stored pixel statistics
            (1.0 = the calibrated pixel threshold), in frame geometry.
        threshold: Value at and above which a pixel belongs to a region.
        min_area: Smallest region kept, in pixels.

    Returns:
        Regions (bounding box, area in pixels, peak value) sorted by peak, descending.
    """
    values = np.asarray(normalized_map, dtype=np.float32)
    if values.size == 0 or not float(values.max()) >= threshold:  # most frames: nothing to label
        return ()
    above = (values >= threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(above, connectivity=8)
    regions = []
    for label in range(1, count):
        x, y, width, height, area = (int(v) for v in stats[label])
        if area < min_area:
            continue
        window = values[y:y + height, x:x + width]
        peak = float(window[labels[y:y + height, x:x + width] == label].max())
        regions.append(Region(x=x, y=y, width=width, height=height, area=area, peak=peak))
    regions.sort(key=lambda region: region.peak, reverse=True)
    return tuple(regions)
