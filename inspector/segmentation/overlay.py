"""Rendering a normalized heatmap over its frame (numpy and OpenCV only)."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from inspector.core.records import Heatmap
from inspector.segmentation.geometry import to_frame_geometry
from inspector.segmentation.heat_colours import HEAT_FLOOR, HEAT_MAX, TABLE_SIZE, heat_rgba_table

CONTOUR_COLOUR = (255, 255, 255)
IGNORED_DIM = 0.55
"""How much of an ignored pixel's brightness is taken away (the live view uses the same layer)."""
HATCH_SPACING = 12
"""Pixels between the diagonal hatch lines of an ignored region (at 480 px frame height)."""
HATCH_COLOUR = (255, 196, 0)


def ignored_layer(inspected: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The RGBA layer that marks ignored pixels: dimmed, with diagonal amber hatching.

    One drawing for the live view (an image item over the frame) and for saved
    overlays (:func:`render_overlay` blends it in), so both show regions the same way.

    Args:
        inspected: Bool mask, True where the model inspects (any size: stretched, nearest).
        shape: The frame's ``(H, W)`` (or ``(H, W, C)``).

    Returns:
        ``HxWx4`` uint8 RGBA; transparent where inspected.
    """
    height, width = int(shape[0]), int(shape[1])
    mask = np.asarray(inspected, dtype=np.uint8)
    if mask.shape != (height, width):
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    ignored = mask == 0
    layer = np.zeros((height, width, 4), dtype=np.uint8)
    layer[ignored, 3] = int(round(255 * IGNORED_DIM))
    spacing = max(8, round(HATCH_SPACING * max(height, width) / 480))
    rows, cols = np.indices((height, width))
    hatch = ignored & (((rows + cols) % spacing) < max(1, spacing // 8))
    layer[hatch, :3] = HATCH_COLOUR
    layer[hatch, 3] = 230
    return layer


def _blend_rgba(frame: np.ndarray, layer: np.ndarray) -> np.ndarray:
    alpha = layer[..., 3:4].astype(np.float32) / 255.0
    out = frame.astype(np.float32) * (1.0 - alpha) + layer[..., :3].astype(np.float32) * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


@lru_cache(maxsize=32)
def _blend_tables(opacity: float) -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables indexed by the map's 8-bit level: premultiplied colour and frame weight.

    Both come from :func:`~inspector.segmentation.heat_colours.heat_rgba_table`,
    the colouring the live view uses, with the blend weight ``opacity * alpha``.

    Returns:
        ``256x1x3`` uint8 ``weight * colour`` (usable as a user colormap by
        :func:`cv2.applyColorMap`) and ``256x1`` uint8 ``255 * (1 - weight)``.
    """
    table = heat_rgba_table(TABLE_SIZE).astype(np.float64)
    weight = opacity * table[:, 3] / 255.0
    coloured = np.clip(table[:, None, :3] * weight[:, None, None] + 0.5, 0, 255).astype(np.uint8)
    keep = np.clip((1.0 - weight) * 255.0 + 0.5, 0, 255).astype(np.uint8).reshape(256, 1)
    return coloured, keep


def render_overlay(image: np.ndarray, heatmap: Heatmap | np.ndarray, opacity: float = 0.5,
                   contours: bool = True, contour_colour: tuple[int, int, int] = CONTOUR_COLOUR,
                   threshold: float = 1.0, inspected: np.ndarray | None = None) -> np.ndarray:
    """The frame with the heatmap's colours blended in and above-threshold regions outlined.

    The colouring is the live view's (:mod:`inspector.segmentation.heat_colours`):
    a fixed scale from 0 to ``HEAT_MAX`` in normalized units, never stretched per
    image, so the same colour always means the same score; the frame is untouched
    below ``HEAT_FLOOR``. The map is quantized to 256 levels over that range
    (steps of 0.008).

    Args:
        image: ``HxWx3`` uint8 RGB frame (``HxW`` gray is accepted).
        heatmap: A :class:`Heatmap` or an array of normalized values (1.0 = pixel
            threshold); resized to the frame if its shape differs.
        opacity: Weight of the colour where the map is at or above the threshold, 0..1.
        contours: Draw the outlines of regions at or above ``threshold``.
        contour_colour: RGB colour of the outlines.
        threshold: Normalized value of the outlined regions.
        inspected: The model's inspected region (``model.regions.inspected``); the ignored
            area is dimmed and hatched (:func:`ignored_layer`). ``None``: all inspected.

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

    coloured, keep = _blend_tables(float(opacity))
    out = frame.copy()
    # Only the box around the pixels above the floor needs blending.
    above = (values > HEAT_FLOOR).astype(np.uint8)
    x, y, width, height = cv2.boundingRect(above)
    if width and height:
        window = cv2.threshold(values[y:y + height, x:x + width], 0.0, 0.0, cv2.THRESH_TOZERO)[1]
        levels = cv2.convertScaleAbs(window, alpha=(TABLE_SIZE - 1) / HEAT_MAX)
        kept = cv2.LUT(levels, keep)
        part = cv2.multiply(frame[y:y + height, x:x + width], cv2.merge((kept, kept, kept)), scale=1.0 / 255.0)
        out[y:y + height, x:x + width] = cv2.add(part, cv2.applyColorMap(levels, coloured), dst=part)
    if contours:
        mask = (values >= threshold).astype(np.uint8)
        outlines, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if outlines:
            thickness = max(1, round(min(frame.shape[:2]) / 240))
            cv2.drawContours(out, outlines, -1, contour_colour, thickness, cv2.LINE_AA)
    if inspected is not None:
        out = _blend_rgba(out, ignored_layer(inspected, out.shape))
    return out
