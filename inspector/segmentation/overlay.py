"""Rendering a normalized heatmap over its frame (numpy and OpenCV only)."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from inspector.core.records import Heatmap
from inspector.segmentation.geometry import to_frame_geometry

CONTOUR_COLOUR = (255, 255, 255)
# Below BLEND_FLOOR (normalized units; 1.0 = pixel threshold) the frame shows unchanged;
# the colour fades in up to twice that value, so there is no hard edge.
BLEND_FLOOR = 0.3


@lru_cache(maxsize=16)
def _rgb_lut(colormap: int) -> np.ndarray:
    """The colormap as a ``256x1x3`` RGB table, usable as a user colormap by :func:`cv2.applyColorMap`."""
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    lut = cv2.cvtColor(cv2.applyColorMap(ramp, colormap), cv2.COLOR_BGR2RGB)
    lut.setflags(write=False)
    return lut


def render_overlay(image: np.ndarray, heatmap: Heatmap | np.ndarray, opacity: float = 0.5,
                   contours: bool = True, colormap: int = cv2.COLORMAP_JET, max_value: float = 2.0,
                   floor: float = BLEND_FLOOR, contour_colour: tuple[int, int, int] = CONTOUR_COLOUR,
                   threshold: float = 1.0) -> np.ndarray:
    """The frame with the heatmap's colours blended in and above-threshold regions outlined.

    The colour scale is fixed (0 to ``max_value`` in normalized units), never
    stretched per image, so the same colour always means the same score.

    Args:
        image: ``HxWx3`` uint8 RGB frame (``HxW`` gray is accepted).
        heatmap: A :class:`Heatmap` or an array of normalized values (1.0 = pixel
            threshold); resized to the frame if its shape differs.
        opacity: Weight of the colour where the map is strong, 0..1.
        contours: Draw the outlines of regions at or above ``threshold``.
        colormap: An OpenCV colormap id.
        max_value: Normalized value shown with the colormap's top colour.
        floor: Normalized value below which the frame is left untouched; the
            colour fades in linearly up to ``2 * floor``.
        contour_colour: RGB colour of the outlines.
        threshold: Normalized value of the outlined regions.

    Returns:
        ``HxWx3`` uint8 RGB image.
    """
    frame = np.ascontiguousarray(image)
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    values = heatmap.values if isinstance(heatmap, Heatmap) else heatmap
    values = np.asarray(values, dtype=np.float32)
    if values.shape != frame.shape[:2]:
        values = to_frame_geometry(values, frame.shape)
    values = np.maximum(values, 0.0)

    # Only the part of the frame where the map rises above the floor is blended.
    active = (values > floor).astype(np.uint8) if floor > 0 else np.ones(values.shape, np.uint8)
    x, y, width, height = cv2.boundingRect(active)
    out = frame.copy()
    if width and height:
        window = values[y:y + height, x:x + width]
        levels = cv2.convertScaleAbs(window, alpha=255.0 / max_value)
        colours = cv2.applyColorMap(levels, _rgb_lut(colormap))
        if floor > 0:
            weight = np.clip(window, floor, 2.0 * floor)
            weight -= floor
            weight *= opacity / floor
        else:
            weight = np.full(window.shape, opacity, dtype=np.float32)
        part = frame[y:y + height, x:x + width]
        out[y:y + height, x:x + width] = cv2.blendLinear(colours, part, weight, 1.0 - weight)
    if contours:
        mask = (values >= threshold).astype(np.uint8)
        outlines, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if outlines:
            thickness = max(1, round(min(frame.shape[:2]) / 240))
            cv2.drawContours(out, outlines, -1, contour_colour, thickness, cv2.LINE_AA)
    return out
