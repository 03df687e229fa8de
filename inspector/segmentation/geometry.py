"""Bringing a square model-input map back to the frame's own geometry."""

from __future__ import annotations

import cv2
import numpy as np


def to_frame_geometry(map_square: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
    """Resize an ``SxS`` map to the frame's ``HxW``.

    The model sees the whole frame stretched to ``SxS`` (see
    :class:`inspector.backbones.preprocessing.Preprocessing`), so stretching the
    map back with bilinear interpolation puts every value over the frame pixels
    it came from, whatever the frame's size and aspect ratio.

    Args:
        map_square: ``SxS`` (or any ``hxw``) map.
        frame_shape: The frame's shape, ``(H, W)`` or ``(H, W, C)``.

    Returns:
        ``HxW`` float32 map.
    """
    height, width = int(frame_shape[0]), int(frame_shape[1])
    values = np.asarray(map_square, dtype=np.float32)
    if values.shape == (height, width):
        return values.copy()
    return cv2.resize(values, (width, height), interpolation=cv2.INTER_LINEAR)
