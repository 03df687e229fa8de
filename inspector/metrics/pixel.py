"""Pixel-level segmentation metrics: pixel AUROC and AUPRO.

``masks`` are ``HxW`` ground-truth arrays (nonzero = defective) and ``maps``
the ``HxW`` anomaly maps of the same images (higher = more anomalous); both
are sequences of equal length or ``NxHxW`` arrays. A pixel is flagged when its
map value is strictly above a threshold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np
from sklearn.metrics import roc_auc_score

ArrayList = Sequence[np.ndarray] | np.ndarray

_THRESHOLD_SAMPLE = 1_000_000


def _pairs(masks: ArrayList, maps: ArrayList) -> list[tuple[np.ndarray, np.ndarray]]:
    if len(masks) != len(maps):
        raise ValueError(f"{len(masks)} masks but {len(maps)} maps")
    if len(masks) == 0:
        raise ValueError("no masks and maps given")
    pairs = []
    for i, (mask, amap) in enumerate(zip(masks, maps, strict=True)):
        mask, amap = np.asarray(mask), np.asarray(amap, dtype=np.float32)
        if mask.ndim != 2 or mask.shape != amap.shape:
            raise ValueError(
                f"image {i}: mask shape {mask.shape} and map shape {amap.shape}"
                " differ or are not HxW"
            )
        if not np.isfinite(amap).all():
            raise ValueError(f"image {i}: the map contains NaN or infinity")
        pairs.append((mask != 0, amap))
    return pairs


def _subsample(arrays: Iterable[np.ndarray], limit: int, rng: np.random.Generator) -> np.ndarray:
    """Concatenate flat arrays; above ``limit`` values, a proportional random sample of each."""
    arrays = [a.ravel() for a in arrays]
    total = sum(a.size for a in arrays)
    if total <= limit:
        return np.concatenate(arrays)
    fraction = limit / total
    return np.concatenate(
        [a[rng.integers(0, a.size, int(np.ceil(a.size * fraction)))] for a in arrays if a.size]
    )


def pixel_auroc(masks: ArrayList, maps: ArrayList, max_pixels: int = 5_000_000) -> float:
    """Area under the ROC curve over all pixels of all images.

    Args:
        masks: Ground-truth masks.
        maps: Anomaly maps of the same shapes.
        max_pixels: Above this many pixels a fixed-seed random sample of this
            size (proportional per image, separately for defective and good
            pixels) is used, which changes the result by far less than 0.001.

    Raises:
        ValueError: if no or only defective pixels exist, or on mismatched or invalid input.
    """
    pairs = _pairs(masks, maps)
    n_pos = sum(int(np.count_nonzero(g)) for g, _ in pairs)
    n_all = sum(g.size for g, _ in pairs)
    if n_pos == 0 or n_pos == n_all:
        raise ValueError("pixel AUROC needs defective and good pixels in the masks")
    rng = np.random.default_rng(0)
    pos_limit = max(1, int(max_pixels * n_pos / n_all))
    pos = _subsample((m[g] for g, m in pairs), pos_limit, rng)
    neg = _subsample((m[~g] for g, m in pairs), max(1, max_pixels - pos_limit), rng)
    labels = np.r_[np.ones(pos.size, np.int8), np.zeros(neg.size, np.int8)]
    return float(roc_auc_score(labels, np.concatenate([pos, neg])))


def _counts_above(
    bins: np.ndarray, groups: np.ndarray, n_groups: int, n_thresholds: int
) -> np.ndarray:
    """Per group, its size (column 0) and its count above threshold ``j`` (column ``j + 1``).

    ``bins`` holds, per value, how many of the ascending thresholds it exceeds.
    """
    width = n_thresholds + 1
    hist = np.bincount(groups * width + bins, minlength=n_groups * width).reshape(n_groups, width)
    return np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]


def pro_curve(
    masks: ArrayList, maps: ArrayList, fpr_limit: float = 0.3, num_thresholds: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """The per-region-overlap curve: PRO against false-positive rate.

    For each threshold, PRO is the mean over all connected (8-neighbour)
    ground-truth regions of all images of the fraction of the region's pixels
    above the threshold, and FPR the fraction of all good pixels above it
    (Bergmann et al., "The MVTec Anomaly Detection Dataset", IJCV 2021).
    Thresholds are quantiles of the good pixels' values, so that the FPRs
    sample ``[0, 1.1 * fpr_limit]`` evenly; FPR and PRO at each threshold are exact.

    Args:
        masks: Ground-truth masks.
        maps: Anomaly maps of the same shapes.
        fpr_limit: Upper end of the FPR range of interest.
        num_thresholds: Number of thresholds.

    Returns:
        ``(fpr, pro)``, ordered by decreasing threshold (so both non-decreasing),
        starting at ``(0, 0)`` and ending at ``(1, 1)``.

    Raises:
        ValueError: if the masks have no defective or no good pixels, or on invalid input.
    """
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    if num_thresholds < 2:
        raise ValueError(f"num_thresholds must be at least 2, got {num_thresholds}")
    pairs = _pairs(masks, maps)
    n_neg = sum(g.size - int(np.count_nonzero(g)) for g, _ in pairs)
    if n_neg == 0:
        raise ValueError("AUPRO needs good pixels in the masks")

    sample = _subsample((m[~g] for g, m in pairs), _THRESHOLD_SAMPLE, np.random.default_rng(0))
    levels = np.linspace(0.0, min(1.0, 1.1 * fpr_limit), num_thresholds)
    thresholds = np.unique(np.quantile(sample, 1.0 - levels))
    k = thresholds.size

    neg_above = np.zeros(k, np.int64)
    region_rows = []
    for truth, amap in pairs:
        neg_bins = np.searchsorted(thresholds, amap[~truth], side="left")
        neg_above += _counts_above(neg_bins, np.zeros_like(neg_bins), 1, k)[0, 1:]
        if not truth.any():
            continue
        n_labels, labels = cv2.connectedComponents(truth.astype(np.uint8), connectivity=8)
        pos_bins = np.searchsorted(thresholds, amap[truth], side="left")
        region_rows.append(
            _counts_above(pos_bins, labels[truth].astype(np.int64) - 1, n_labels - 1, k)
        )
    if not region_rows:
        raise ValueError("AUPRO needs at least one defective region in the masks")

    regions = np.vstack(region_rows)
    pro = (regions[:, 1:] / regions[:, :1]).mean(axis=0)
    fpr = neg_above / n_neg
    # thresholds ascend, so reverse to walk from the strictest threshold down
    return np.r_[0.0, fpr[::-1], 1.0], np.r_[0.0, pro[::-1], 1.0]


def aupro(
    masks: ArrayList, maps: ArrayList, fpr_limit: float = 0.3, num_thresholds: int = 200
) -> float:
    """Normalized area under the PRO curve up to ``fpr_limit``: 1 is perfect, random is about half
    of ``fpr_limit``.

    The PRO curve (see :func:`pro_curve`) is integrated with the trapezoidal
    rule from FPR 0 to ``fpr_limit``, interpolating linearly at ``fpr_limit``,
    and divided by ``fpr_limit``.

    Args:
        masks: Ground-truth masks.
        maps: Anomaly maps of the same shapes.
        fpr_limit: Upper end of the integrated FPR range.
        num_thresholds: Number of thresholds.

    Raises:
        ValueError: if the masks have no defective or no good pixels, or on invalid input.
    """
    fpr, pro = pro_curve(masks, maps, fpr_limit, num_thresholds)
    end = int(np.searchsorted(fpr, fpr_limit, side="right"))
    x, y = fpr[:end], pro[:end]
    if end < fpr.size and x[-1] < fpr_limit:
        x0, x1, y0, y1 = fpr[end - 1], fpr[end], pro[end - 1], pro[end]
        x = np.r_[x, fpr_limit]
        y = np.r_[y, y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0)]
    area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
    return area / fpr_limit
