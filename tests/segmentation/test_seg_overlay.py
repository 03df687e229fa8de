"""Overlay rendering: golden image, fixed colour scale, untouched good areas.

The golden image ``golden/overlay_blobs.png`` is the renderer's output for the
synthetic frame and map built below. After an intended change of the rendering,
regenerate it with ``python tests/segmentation/test_seg_overlay.py --regenerate``
(from the repository root), look at it, and commit it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from inspector.core.records import Heatmap
from inspector.segmentation.heat_colours import HEAT_FLOOR, HEAT_MAX, heat_rgba_table
from inspector.segmentation.overlay import render_overlay

GOLDEN = Path(__file__).parent / "golden" / "overlay_blobs.png"


def synthetic_frame() -> np.ndarray:
    """A 120x160 RGB frame: colour ramps and a coarse checkerboard."""
    yy, xx = np.mgrid[0:120, 0:160]
    checker = ((xx // 16 + yy // 16) % 2) * 60 + 100
    return np.stack([(xx * 1.5) % 256, (yy * 2) % 256, checker], axis=-1).astype(np.uint8)


def synthetic_map() -> np.ndarray:
    """Two blobs: one peaking at 1.8 (above the pixel threshold), one at 0.7 (below it)."""
    yy, xx = np.mgrid[0:120, 0:160].astype(np.float32)
    strong = 1.8 * np.exp(-((xx - 50) ** 2 + (yy - 40) ** 2) / (2 * 14.0 ** 2))
    weak = 0.7 * np.exp(-((xx - 120) ** 2 + (yy - 85) ** 2) / (2 * 10.0 ** 2))
    return (strong + weak).astype(np.float32)


def test_overlay_matches_the_golden_image() -> None:
    expected = cv2.cvtColor(cv2.imread(str(GOLDEN), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    out = render_overlay(synthetic_frame(), synthetic_map())
    assert out.shape == expected.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(np.int16) - expected.astype(np.int16))
    # Tolerates anti-aliasing differences between OpenCV builds along the contour.
    assert diff.mean() < 0.5, diff.mean()
    assert np.mean(diff.max(axis=2) > 24) < 0.003


def test_good_areas_look_exactly_like_the_frame() -> None:
    frame = synthetic_frame()
    values = synthetic_map()
    out = render_overlay(frame, values)
    quiet = values < HEAT_FLOOR
    assert quiet.mean() > 0.5
    assert np.array_equal(out[quiet], frame[quiet])
    assert not np.array_equal(out[values > 1.2], frame[values > 1.2])


def test_colour_scale_is_fixed_not_stretched_per_image() -> None:
    frame = np.full((60, 80, 3), 128, np.uint8)
    values = np.zeros((60, 80), np.float32)
    values[10:30, 10:30] = 0.8
    alone = render_overlay(frame, values, contours=False)
    values_with_hot_spot = values.copy()
    values_with_hot_spot[40:55, 60:75] = 5.0
    together = render_overlay(frame, values_with_hot_spot, contours=False)
    assert np.array_equal(alone[10:30, 10:30], together[10:30, 10:30])


def test_saved_overlays_use_the_live_views_colours() -> None:
    """One colouring: a saved overlay at full opacity on black shows the live view's table colour."""
    table = heat_rgba_table()
    frame = np.zeros((10, 40, 3), np.uint8)
    values = np.repeat(np.linspace(0.0, HEAT_MAX, 40, dtype=np.float32)[None, :], 10, axis=0)
    out = render_overlay(frame, values, opacity=1.0, contours=False)
    index = np.round(values[0] / HEAT_MAX * (len(table) - 1)).astype(int)
    expected = np.round(table[index, :3] * (table[index, 3:] / 255.0)).astype(int)
    assert np.abs(out[0].astype(int) - expected).max() <= 2
    assert np.array_equal(out[0][values[0] < HEAT_FLOOR], frame[0][values[0] < HEAT_FLOOR])
    assert (out[0][values[0] >= 1.0][:, 0] == 255).all()  # opaque red channel at and above the threshold


def test_contours_outline_only_above_threshold_regions() -> None:
    frame = np.zeros((100, 100, 3), np.uint8)
    values = np.zeros((100, 100), np.float32)
    values[20:40, 20:40] = 1.5
    values[60:80, 60:80] = 0.9
    out = render_overlay(frame, values, opacity=0.0, contour_colour=(0, 255, 0))
    green = (out[..., 1] > 200) & (out[..., 0] < 50)
    assert green[18:42, 18:42].any()
    assert not green[55:85, 55:85].any()


def test_heatmap_record_and_other_map_sizes_are_accepted() -> None:
    frame = synthetic_frame()
    small = cv2.resize(synthetic_map(), (56, 56), interpolation=cv2.INTER_AREA)
    out = render_overlay(frame, Heatmap(values=small, method="fast"))
    assert out.shape == frame.shape
    gray = render_overlay(frame[..., 0], small)
    assert gray.shape == frame.shape


def test_saved_overlays_show_the_models_ignored_area_as_the_live_view_does() -> None:
    """The station's saved overlays (make_overlay) dim and hatch what a model with regions ignores."""
    from types import SimpleNamespace

    from inspector.detectors.regions import RegionMask
    from inspector.workers.segmentation_worker import make_overlay

    frame, values = synthetic_frame(), synthetic_map()
    inspected = np.ones((64, 64), bool)
    inspected[:, 40:] = False  # the right part of the frame is ignored
    model = SimpleNamespace(regions=RegionMask(inspected=inspected, fill=np.zeros((64, 64, 3), np.uint8)))
    plain = make_overlay(frame, Heatmap(values=values, method="fast"))
    masked = make_overlay(frame, Heatmap(values=values, method="fast"), model=model)
    assert np.array_equal(masked, render_overlay(frame, values, inspected=inspected))
    right, left = slice(110, 160), slice(0, 90)
    assert not np.array_equal(masked[:, right], plain[:, right])
    assert np.array_equal(masked[:, left], plain[:, left])
    assert np.array_equal(make_overlay(frame, Heatmap(values=values, method="fast"), model=SimpleNamespace()), plain)


def _regenerate() -> None:
    out = render_overlay(synthetic_frame(), synthetic_map())
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(GOLDEN), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    if "--regenerate" in sys.argv[1:]:
        _regenerate()
    else:
        print(__doc__)
