"""Image-level detection metrics: AUROC and F1.

Labels are 1 for defective and 0 for good; scores are higher for more
anomalous images, and an image is flagged when ``score >= threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score


def _as_arrays(
    labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{y.size} labels but {s.size} scores")
    if y.size == 0:
        raise ValueError("no labels and scores given")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (good) or 1 (defective)")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinity")
    return y.astype(np.int64), s


def auroc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve of image scores.

    Args:
        labels: 1 for defective, 0 for good.
        scores: Anomaly scores, higher is more anomalous.

    Raises:
        ValueError: if only one class is present, or on mismatched or invalid input.
    """
    y, s = _as_arrays(labels, scores)
    if y.min() == y.max():
        kind = "defective" if y[0] == 1 else "good"
        raise ValueError(f"AUROC needs good and defective images, but all {y.size} are {kind}")
    return float(roc_auc_score(y, s))


def f1_at(
    labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, threshold: float
) -> float:
    """F1 score of flagging images with ``score >= threshold`` (0 when nothing is right)."""
    y, s = _as_arrays(labels, scores)
    flagged = s >= threshold
    tp = int(np.count_nonzero(flagged & (y == 1)))
    fp = int(np.count_nonzero(flagged & (y == 0)))
    fn = int(np.count_nonzero(~flagged & (y == 1)))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def best_f1(
    labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> tuple[float, float]:
    """The highest F1 over all thresholds, and the threshold reaching it.

    Every distinct score is tried as a threshold; ties in F1 go to the highest
    threshold.

    Returns:
        ``(f1, threshold)``; ``f1_at(labels, scores, threshold) == f1``.

    Raises:
        ValueError: if there is no defective image, or on mismatched or invalid input.
    """
    y, s = _as_arrays(labels, scores)
    positives = int(y.sum())
    if positives == 0:
        raise ValueError("F1 needs at least one defective image")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(1 - y_sorted)
    # only the last index of each run of equal scores is a realisable threshold
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    tp, fp, thresholds = tp[last], fp[last], s_sorted[last]
    f1 = 2 * tp / (2 * tp + fp + (positives - tp))
    best = int(np.argmax(f1))
    return float(f1[best]), float(thresholds[best])
