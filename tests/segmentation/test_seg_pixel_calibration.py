"""Pixel calibration: stored statistics only, never per image."""

from __future__ import annotations

import json

import numpy as np
import pytest

from inspector.segmentation.pixel_calibration import (
    PixelCalibration,
    fit_pixel_calibration,
    normalize_map,
)


def _held_out(count: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (10.0 + rng.random((count, 32, 32))).astype(np.float32)


def test_floor_is_the_median_and_threshold_the_99th_percentile_of_image_maxima() -> None:
    maps = _held_out()
    cal = fit_pixel_calibration(maps)
    assert cal.floor == pytest.approx(float(np.median(maps)))
    assert cal.threshold == pytest.approx(float(np.percentile(maps.reshape(20, -1).max(1), 99)))
    assert cal.floor < cal.threshold <= maps.max()


def test_same_raw_map_gives_the_same_normalized_map_whatever_else_is_scored() -> None:
    cal = fit_pixel_calibration(_held_out())
    raw = np.linspace(9.0, 14.0, 64 * 64, dtype=np.float32).reshape(64, 64)
    alone = normalize_map(raw, cal)
    with_a_hot_frame = normalize_map(np.stack([raw, raw * 50]), cal)[0]
    with_a_cold_frame = normalize_map(np.stack([np.zeros_like(raw), raw]), cal)[1]
    assert np.array_equal(alone, with_a_hot_frame) and np.array_equal(alone, with_a_cold_frame)
    # A flat frame is not stretched to show its "hottest" pixels.
    flat = normalize_map(np.full((8, 8), cal.floor), cal)
    assert np.all(flat == 0)


def test_threshold_maps_to_one_and_below_floor_to_zero() -> None:
    cal = PixelCalibration(floor=2.0, threshold=6.0)
    out = normalize_map(np.array([[0.0, 2.0, 4.0, 6.0, 10.0]]), cal)
    assert out.dtype == np.float32
    assert out.tolist() == [[0.0, 0.0, 0.5, 1.0, 2.0]]


def test_round_trip_through_json() -> None:
    cal = fit_pixel_calibration(_held_out())
    again = PixelCalibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal


def test_constant_held_out_maps_still_give_a_usable_scale() -> None:
    cal = fit_pixel_calibration(np.full((3, 8, 8), 5.0))
    assert cal.threshold > cal.floor
    assert np.isfinite(normalize_map(np.full((8, 8), 6.0), cal)).all()


@pytest.mark.parametrize("bad", [np.zeros((0, 8, 8)), np.full((2, 4, 4), np.nan)])
def test_invalid_held_out_maps_are_rejected(bad) -> None:
    with pytest.raises(ValueError):
        fit_pixel_calibration(bad)
