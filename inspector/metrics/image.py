"""Image-level detection metrics: AUROC and F1.

Labels are 1 for defective and 0 for good; scores are higher for more
anomalous images, and an image is flagged when ``score >= threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata
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


def auroc_difference(labels: Sequence[int] | np.ndarray, first: Sequence[float] | np.ndarray,
                     second: Sequence[float] | np.ndarray, resamples: int = 2000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """AUROC of ``first`` minus AUROC of ``second`` on the same images, with a paired bootstrap interval.

    Both score sets are resampled with the same images (good and defective images
    resampled separately, so every resample has the test set's class counts), which
    keeps what the two methods share: a hard image counts against both.

    Args:
        labels: 1 for defective, 0 for good.
        first: Scores of one method, higher is more anomalous.
        second: Scores of the other method on the same images.
        resamples: Bootstrap resamples.
        level: Two-sided coverage of the percentile interval.
        seed: Seed of the resampling.

    Returns:
        The difference on the test set and the interval's lower and upper ends.

    Raises:
        ValueError: as :func:`auroc`, or when the score sets differ in length.
    """
    y, a = _as_arrays(labels, first)
    _, b = _as_arrays(labels, second)
    difference = auroc(y, a) - auroc(y, b)
    good, bad = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    rng = np.random.default_rng(seed)
    deltas = []
    for start in range(0, int(resamples), 250):
        count = min(250, int(resamples) - start)
        rows = np.concatenate([rng.choice(good, (count, len(good))), rng.choice(bad, (count, len(bad)))], axis=1)
        deltas.append(_rank_auroc(a[rows], len(good)) - _rank_auroc(b[rows], len(good)))
    deltas = np.concatenate(deltas)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(deltas, [tail, 1.0 - tail])
    return float(difference), float(low), float(high)


def _rank_auroc(scores: np.ndarray, goods: int) -> np.ndarray:
    """AUROC of each row of ``scores`` whose first ``goods`` columns are good images (Mann-Whitney, ties halved)."""
    bads = scores.shape[1] - goods
    ranks = rankdata(scores, axis=1)
    return (ranks[:, goods:].sum(1) - bads * (bads + 1) / 2.0) / (goods * bads)


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
