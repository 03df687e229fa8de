"""Do the parts being inspected look like the references? A test on recent scores.

A threshold's promised false-reject rate holds only while production parts are
exchangeable with the references it was calibrated on. Two one-sided tests
compare recent frames with the model's held-out good scores:

1. **Reject count** (conformal): under exchangeability, the number of ``N``
   recent good parts scoring above a threshold that ``r`` of ``n`` held-out
   scores exceed follows a beta-binomial ``(N, r + 1, n - r)``. The p-value is
   the probability of at least the observed number of rejects.
2. **Score shift** (Mann-Whitney U, one-sided): recent frames judged good against
   held-out good scores at or below the threshold; both are samples of the same
   truncated distribution when nothing changed.

Drift is declared when either p-value is below ``alpha / 2`` (Bonferroni over the
two tests; ``alpha`` = 0.01 by default), after at least ``MIN_FRAMES`` frames.
Many rejects alone can also be a burst of real defects; a shifted good
population is the sign that the references do not represent these parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import stats

ALPHA = 0.01
MIN_FRAMES = 20


@dataclass(frozen=True)
class DriftReport:
    """The outcome of :func:`drift_test`.

    Attributes:
        drift: Whether the recent parts differ from the references (``None``: too few frames yet).
        frames: Recent frames tested; ``rejected`` of them above the threshold.
        expected_reject_rate: Held-out rate of scores above the threshold.
        reject_p_value: p-value of the reject-count test.
        shift_statistic: Common-language effect size of the score-shift test, P(recent > held-out).
        shift_p_value: p-value of the score-shift test (``None`` with too few good frames).
        alpha: Overall significance level.
        message: One sentence for the operator.
    """

    drift: bool | None
    frames: int
    rejected: int
    expected_reject_rate: float
    reject_p_value: float
    shift_statistic: float | None
    shift_p_value: float | None
    alpha: float
    message: str = field(default="")

    def to_dict(self) -> dict:
        """JSON-ready form (``inspector drift --format json``)."""
        return {
            "drift": self.drift, "frames": self.frames, "rejected": self.rejected,
            "reject_rate": self.rejected / self.frames if self.frames else 0.0,
            "expected_reject_rate": self.expected_reject_rate,
            "reject_test": {"name": "conformal beta-binomial, one-sided", "p_value": self.reject_p_value},
            "shift_test": {"name": "Mann-Whitney U on frames judged good vs held-out good, one-sided",
                           "statistic": self.shift_statistic, "p_value": self.shift_p_value},
            "alpha": self.alpha, "message": self.message,
        }


def drift_test(held_out: Sequence[float], threshold: float, recent: Sequence[float],
               alpha: float = ALPHA, min_frames: int = MIN_FRAMES) -> DriftReport:
    """Test whether ``recent`` raw scores come from the population of the ``held_out`` good scores.

    Args:
        held_out: Held-out raw scores of good reference images (stored in the model).
        threshold: The raw threshold in use.
        recent: Raw scores of recent frames, in any order.
        alpha: Overall significance level of the two tests.
        min_frames: Fewer recent frames give ``drift=None`` ("not enough frames yet").
    """
    good = np.asarray(held_out, dtype=np.float64)
    scores = np.asarray(recent, dtype=np.float64)
    n, frames = len(good), len(scores)
    above = int(np.sum(good > threshold))
    rejected = int(np.sum(scores > threshold))
    expected = above / n if n else 0.0
    reject_p = float(stats.betabinom.sf(rejected - 1, frames, above + 1, max(n - above, 1))) if frames else 1.0
    passed = scores[scores <= threshold]
    reference = good[good <= threshold]
    shift_stat, shift_p = None, None
    if len(passed) >= 5 and len(reference) >= 5:
        test = stats.mannwhitneyu(passed, reference, alternative="greater")
        shift_stat = float(test.statistic / (len(passed) * len(reference)))
        shift_p = float(test.pvalue)
    if frames < min_frames:
        return DriftReport(None, frames, rejected, expected, reject_p, shift_stat, shift_p, alpha,
                           f"watching: {frames} of {min_frames} frames needed to compare with the references")
    shifted = shift_p is not None and shift_p < alpha / 2
    too_many = reject_p < alpha / 2
    if shifted:
        message = (f"the references do not represent these parts: good-looking frames score higher than the "
                   f"held-out references (P(higher) = {shift_stat:.2f}, {p_text(shift_p)}); "
                   f"{rejected} of {frames} rejected where {expected:.1%} was expected")
    elif too_many:
        message = (f"more rejects than the references predict: {rejected} of {frames} where {expected:.1%} was "
                   f"expected ({p_text(reject_p)}); a burst of defects, or references that do not represent "
                   "production")
    else:
        message = f"parts match the references ({rejected} of {frames} rejected, {expected:.1%} expected)"
    return DriftReport(shifted or too_many, frames, rejected, expected, reject_p, shift_stat, shift_p, alpha,
                       message)


SMALLEST_P = 0.001
"""p-values below this are written ``p < 0.001`` (an underflowed one would read ``p = 0``)."""


def p_text(p: float) -> str:
    """A p-value as a message shows it: ``p < 0.001`` when smaller, else ``p = 0.04``."""
    return f"p < {SMALLEST_P:g}" if p < SMALLEST_P else f"p = {p:.2g}"


class DriftMonitor:
    """Keeps the scores of the last frames since a model was put in use and tests them every few frames.

    Args:
        held_out: The model's held-out good scores.
        threshold: The raw threshold in use.
        window: Recent frames kept (the test looks at these).
        every: Test again after this many new frames.
    """

    def __init__(self, held_out: Sequence[float], threshold: float, window: int = 200, every: int = 10,
                 alpha: float = ALPHA) -> None:
        import collections

        self.held_out = np.asarray(held_out, dtype=np.float64)
        self.threshold = float(threshold)
        self.alpha = alpha
        self.every = max(1, int(every))
        self._recent: collections.deque[float] = collections.deque(maxlen=max(MIN_FRAMES, int(window)))
        self._since = 0
        self.report: DriftReport | None = None

    @property
    def recent(self) -> np.ndarray:
        """The raw scores of the recent frames the test looks at, oldest first."""
        return np.asarray(self._recent, dtype=np.float64)

    def add(self, raw_score: float) -> DriftReport | None:
        """Record one decided frame; returns a fresh report when one was computed, else ``None``."""
        self._recent.append(float(raw_score))
        self._since += 1
        if self._since < self.every and self.report is not None and len(self._recent) > MIN_FRAMES:
            return None
        self._since = 0
        self.report = drift_test(self.held_out, self.threshold, list(self._recent), alpha=self.alpha)
        return self.report
