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


@lru_cache(maxsize=32)
def _blend_tables(colormap: int, opacity: float, floor: float, max_value: float) -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables indexed by the map's 8-bit level: premultiplied colour and frame weight.

    Returns:
        ``256x1x3`` uint8 ``weight * colour`` (usable as a user colormap by
        :func:`cv2.applyColorMap`) and ``256x1`` uint8 ``255 * (1 - weight)``.
    """
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    colours = cv2.cvtColor(cv2.applyColorMap(ramp, colormap), cv2.COLOR_BGR2RGB).astype(np.float64)
    value = np.arange(256) / 255.0 * max_value
    if floor > 0:
        weight = opacity * np.clip((value - floor) / floor, 0.0, 1.0)
    else:
        weight = np.full(256, float(opacity))
    coloured = np.clip(colours * weight[:, None, None] + 0.5, 0, 255).astype(np.uint8)
    keep = np.clip((1.0 - weight) * 255.0 + 0.5, 0, 255).astype(np.uint8).reshape(256, 1)
    return coloured, keep


def render_overlay(image: np.ndarray, heatmap: Heatmap | np.ndarray, opacity: float = 0.5,
                   contours: bool = True, colormap: int = cv2.COLORMAP_JET, max_value: float = 2.0,
                   floor: float = BLEND_FLOOR, contour_colour: tuple[int, int, int] = CONTOUR_COLOUR,
                   threshold: float = 1.0) -> np.ndarray:
    """The frame with the heatmap's colours blended in and above-threshold regions outlined.

    The colour scale is fixed (0 to ``max_value`` in normalized units), never
    stretched per image, so the same colour always means the same score. The
    map is quantized to 256 levels over that range for the colour and the
    blend weight (steps of 0.008 with the defaults).

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

    coloured, keep = _blend_tables(int(colormap), float(opacity), float(floor), float(max_value))
    out = frame.copy()
    # Only the box around the pixels above the floor needs blending.
    above = (values > floor).astype(np.uint8) if floor > 0 else np.ones(values.shape, np.uint8)
    x, y, width, height = cv2.boundingRect(above)
    if width and height:
        window = cv2.threshold(values[y:y + height, x:x + width], 0.0, 0.0, cv2.THRESH_TOZERO)[1]
        levels = cv2.convertScaleAbs(window, alpha=255.0 / max_value)
        kept = cv2.LUT(levels, keep)
        part = cv2.multiply(frame[y:y + height, x:x + width], cv2.merge((kept, kept, kept)), scale=1.0 / 255.0)
        out[y:y + height, x:x + width] = cv2.add(part, cv2.applyColorMap(levels, coloured), dst=part)
    if contours:
        mask = (values >= threshold).astype(np.uint8)
        outlines, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if outlines:
            thickness = max(1, round(min(frame.shape[:2]) / 240))
            cv2.drawContours(out, outlines, -1, contour_colour, thickness, cv2.LINE_AA)
    return out
