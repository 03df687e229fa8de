"""Maps back in the frame's own geometry, and connected regions with exact boxes."""

from __future__ import annotations

import numpy as np
import pytest

from inspector.core.records import Region
from inspector.segmentation.geometry import to_frame_geometry
from inspector.segmentation.regions import find_regions


@pytest.mark.parametrize("frame_shape", [(480, 640), (480, 640, 3), (640, 480, 3), (37, 1001), (224, 224)])
def test_map_comes_back_in_the_frame_geometry(frame_shape) -> None:
    square = np.random.default_rng(0).random((224, 224)).astype(np.float32)
    out = to_frame_geometry(square, frame_shape)
    assert out.shape == tuple(frame_shape[:2])
    assert out.dtype == np.float32


def test_a_spot_lands_over_the_same_part_of_a_non_square_frame() -> None:
    square = np.zeros((224, 224), np.float32)
    square[28:56, 168:196] = 1.0  # an eighth down, three quarters across
    out = to_frame_geometry(square, (480, 640, 3))
    ys, xs = np.nonzero(out > 0.5)
    assert 60 <= ys.min() and ys.max() <= 120  # 28/224*480 = 60 ... 56/224*480 = 120
    assert 480 <= xs.min() and xs.max() <= 560  # 168/224*640 = 480 ... 196/224*640 = 560
    assert abs(ys.mean() - 90) < 3 and abs(xs.mean() - 520) < 3


def test_same_size_map_is_returned_unchanged_as_a_copy() -> None:
    square = np.arange(16, dtype=np.float64).reshape(4, 4)
    out = to_frame_geometry(square, (4, 4))
    assert out.dtype == np.float32 and np.array_equal(out, square)
    out[0, 0] = 99
    assert square[0, 0] == 0


def test_regions_have_exact_boxes_areas_and_peaks_sorted_by_peak() -> None:
    values = np.zeros((120, 200), np.float32)
    values[10:30, 20:60] = 1.5      # 20 x 40 box
    values[15, 25] = 3.0
    values[70:100, 150:160] = 2.0   # 30 x 10 box
    values[50:52, 100:102] = 5.0    # 4 px: below min_area
    regions = find_regions(values, threshold=1.0, min_area=16)
    assert regions == (
        Region(x=20, y=10, width=40, height=20, area=800, peak=3.0),
        Region(x=150, y=70, width=10, height=30, area=300, peak=2.0),
    )
    assert all(isinstance(r.peak, float) for r in regions)


def test_regions_respect_threshold_and_min_area() -> None:
    values = np.zeros((50, 50), np.float32)
    values[5:10, 5:10] = 0.9
    values[30:32, 30:32] = 1.2
    assert find_regions(values) == ()
    assert len(find_regions(values, min_area=1)) == 1
    assert len(find_regions(values, threshold=0.8, min_area=1)) == 2


def test_diagonal_neighbours_form_one_region() -> None:
    values = np.zeros((20, 20), np.float32)
    for i in range(2, 12):
        values[i, i] = 1.0
    [region] = find_regions(values, min_area=1)
    assert (region.x, region.y, region.width, region.height, region.area) == (2, 2, 10, 10, 10)


def test_no_regions_on_an_empty_map() -> None:
    assert find_regions(np.zeros((10, 10), np.float32)) == ()
