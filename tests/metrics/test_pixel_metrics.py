"""Tests of the pixel-level metrics (pixel AUROC and AUPRO)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inspector.metrics.pixel import aupro, pixel_auroc, pro_curve


@pytest.fixture(scope="module")
def masks() -> np.ndarray:
    """Twenty 64x64 masks, one empty, the others with a square region left and one right."""
    rng = np.random.default_rng(0)
    out = np.zeros((20, 64, 64), bool)
    for i in range(1, 20):
        y, x = rng.integers(2, 50, 2)
        out[i, y : y + 10, 2 + x // 4 : 12 + x // 4] = True
        y = rng.integers(2, 56)
        out[i, y : y + 6, 50:56] = True
    return out


def test_perfect_map(masks: np.ndarray) -> None:
    maps = masks.astype(np.float32)
    assert pixel_auroc(masks, maps) == 1.0
    assert aupro(masks, maps) == pytest.approx(1.0)


def test_random_map(masks: np.ndarray) -> None:
    maps = np.random.default_rng(1).random(masks.shape)
    assert pixel_auroc(masks, maps) == pytest.approx(0.5, abs=0.03)
    # PRO follows the FPR: the integral of f over [0, 0.3] divided by 0.3 is 0.15
    assert aupro(masks, maps) == pytest.approx(0.15, abs=0.02)


def test_inverted_map(masks: np.ndarray) -> None:
    maps = (~masks).astype(np.float32) + 0.1 * np.random.default_rng(2).random(masks.shape)
    assert pixel_auroc(masks, maps) == 0.0
    assert aupro(masks, maps) < 0.01


def test_map_hitting_one_of_two_regions(masks: np.ndarray) -> None:
    maps = 0.5 * np.random.default_rng(3).random(masks.shape)
    maps[:, :, :48][masks[:, :, :48]] = 1.0
    maps[:, :, 48:][masks[:, :, 48:]] = -1.0
    assert aupro(masks, maps) == pytest.approx(0.5, abs=0.01)
    # the missed region scored like the background: PRO = 0.5 + 0.5 FPR, averaging 0.575
    maps[:, :, 48:][masks[:, :, 48:]] = 0.5 * np.random.default_rng(4).random(
        int(masks[:, :, 48:].sum())
    )
    assert aupro(masks, maps) == pytest.approx(0.575, abs=0.02)


def test_aupro_weights_regions_not_pixels() -> None:
    mask = np.zeros((1, 64, 64), bool)
    mask[0, 5:45, 5:45] = True  # 1600 px, found
    mask[0, 55:58, 55:58] = True  # 9 px, missed
    maps = np.where(mask, 1.0, 0.5 * np.random.default_rng(5).random(mask.shape))
    maps[0, 55:58, 55:58] = -1.0
    assert aupro(mask, maps) == pytest.approx(0.5, abs=0.01)
    assert pixel_auroc(mask, maps) > 0.99


def _reference_aupro(masks: np.ndarray, maps: np.ndarray, limit: float) -> float:
    """Slow, direct evaluation at every distinct map value."""
    regions = []
    for mask, amap in zip(masks, maps, strict=True):
        n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        regions += [amap[labels == k] for k in range(1, n)]
    negatives = maps[~masks]
    points = [(0.0, 0.0)]
    for t in np.unique(maps)[::-1]:
        points.append(((negatives > t).mean(), np.mean([(r > t).mean() for r in regions])))
    points.append((1.0, 1.0))
    fpr, pro = np.array(points).T
    end = np.searchsorted(fpr, limit, side="right")
    x = np.r_[fpr[:end], limit]
    y = np.r_[pro[:end], np.interp(limit, fpr[end - 1 : end + 1], pro[end - 1 : end + 1])]
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2) / limit)


def test_aupro_matches_direct_evaluation() -> None:
    rng = np.random.default_rng(6)
    masks = np.zeros((4, 24, 24), bool)
    for i in range(4):
        for _ in range(2):
            y, x = rng.integers(0, 18, 2)
            masks[i, y : y + rng.integers(2, 6), x : x + rng.integers(2, 6)] = True
    maps = cv2.GaussianBlur(masks.astype(np.float32).transpose(1, 2, 0), (5, 5), 1.5).transpose(
        2, 0, 1
    )
    maps = np.round(maps + 1.5 * rng.random(masks.shape), 2)
    assert aupro(masks, maps, num_thresholds=400) == pytest.approx(
        _reference_aupro(masks, maps, 0.3), abs=0.01
    )
    assert aupro(masks, maps, fpr_limit=1.0) == pytest.approx(
        _reference_aupro(masks, maps, 1.0), abs=0.01
    )


def test_pro_curve_shape(masks: np.ndarray) -> None:
    fpr, pro = pro_curve(masks, np.random.default_rng(7).random(masks.shape), num_thresholds=50)
    assert fpr[0] == 0 and pro[0] == 0 and fpr[-1] == 1 and pro[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(pro) >= 0)
    assert fpr[-2] >= 0.3


def test_pixel_auroc_subsampling_is_deterministic_and_close(masks: np.ndarray) -> None:
    maps = masks + np.random.default_rng(8).normal(0, 0.8, masks.shape)
    full = pixel_auroc(masks, maps)
    sampled = pixel_auroc(masks, maps, max_pixels=20_000)
    assert sampled == pixel_auroc(masks, maps, max_pixels=20_000)
    assert sampled == pytest.approx(full, abs=0.02)


def test_invalid_input_raises(masks: np.ndarray) -> None:
    empty = np.zeros((2, 8, 8), bool)
    with pytest.raises(ValueError, match="defective"):
        pixel_auroc(empty, np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="region"):
        aupro(empty, np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="shape"):
        aupro(masks, masks[:, :32].astype(float))
    with pytest.raises(ValueError, match="masks but"):
        pixel_auroc(masks, masks[:3].astype(float))
    with pytest.raises(ValueError, match="fpr_limit"):
        aupro(masks, masks.astype(float), fpr_limit=0.0)
