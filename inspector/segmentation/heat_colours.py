"""The one colouring of anomaly maps: the live view, the last-reject panel, saved overlays and reports.

Map values are normalized (1.0 = the calibrated pixel threshold) and shown on a
fixed scale from 0 to :data:`HEAT_MAX`, never stretched per image. Below
:data:`HEAT_FLOOR` (half the threshold) the frame shows unchanged; the colour
fades in up to the threshold and goes from yellow to red towards twice it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

HEAT_MAX = 2.0
"""Normalized map value shown with the top colour (twice the pixel threshold)."""
HEAT_FLOOR = 0.5
"""Normalized map value below which nothing is drawn (half the pixel threshold)."""
TABLE_SIZE = 256


@lru_cache(maxsize=4)
def heat_rgba_table(size: int = TABLE_SIZE) -> np.ndarray:
    """``size x 4`` uint8 RGBA, indexed by ``value / HEAT_MAX * (size - 1)``.

    Alpha is 0 up to :data:`HEAT_FLOOR`, rises linearly to 255 at the pixel
    threshold (1.0) and stays opaque above; the colour goes from yellow to red.
    The returned array is read-only (it is shared).
    """
    t = np.linspace(0.0, 1.0, size)  # t = value / HEAT_MAX
    floor, opaque = HEAT_FLOOR / HEAT_MAX, 1.0 / HEAT_MAX
    table = np.zeros((size, 4), dtype=np.uint8)
    table[:, 0] = 255
    table[:, 1] = np.clip(230 * (1.0 - (t - floor) / (1.0 - floor)), 0, 230).astype(np.uint8)
    table[:, 2] = np.clip(80 * (1.0 - t * 2), 0, 80).astype(np.uint8)
    table[:, 3] = (np.clip((t - floor) / (opaque - floor), 0.0, 1.0) * 255).astype(np.uint8)
    table.setflags(write=False)
    return table
