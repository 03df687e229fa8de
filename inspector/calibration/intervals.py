"""How far a rate measured on held-out images can be trusted: 95 % intervals.

**False-reject rate.** The threshold is set on ``n`` held-out good scores, ``r``
of which lie above it. If future good parts were exchangeable with the held-out
scores, the false-reject rate the threshold will have in production would be
distributed as ``Beta(r + 1, n - r)`` over the draw of the references (the
order-statistic result behind conformal prediction). The held-out scores are
not quite exchangeable with production scores: each comes from a model fitted
without its own image (n - 1 references), production is scored by the model
fitted on all n, and a rare good variant among the references then scores
higher held out than its kind does in production. The estimate therefore errs
high (measured on real images: ``tests/benchmarks/bench_coverage.py``, README),
and the interval shown is one-sided: from 0 to the 95 % upper quantile of that
Beta, "at most this many false rejects". With 30 references and none above the
threshold: at most 9.5 %.

**Escape rate.** ``k`` of ``m`` known-bad images at or below the threshold:
Clopper-Pearson interval of a binomial proportion (defects of the kinds given).

Neither interval holds when the references do not represent production (one
lot, one shift): that is what :mod:`inspector.calibration.drift` watches for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95
# A held-out set "supports" a target rate when the interval's upper end is within this factor of it.
SUPPORT_FACTOR = 3.0


@dataclass(frozen=True)
class RateEstimate:
    """A rate with its interval.

    Attributes:
        rate: The fraction measured on the held-out (or known-bad) images.
        low, high: The 95 % interval of the rate to expect on unseen parts (one-sided, ``low`` = 0,
            for false rejects; two-sided for escapes).
        count: Images above (FRR) or at/below (escape) the threshold.
        total: Images the rate was measured on.
        one_sided: True when the interval is an upper bound only (``low`` is 0 by construction,
            not by measurement): the false-reject estimate.
    """

    rate: float
    low: float
    high: float
    count: int
    total: int
    one_sided: bool = False

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"rate": self.rate, "interval": [self.low, self.high], "count": self.count, "total": self.total}

    def describe(self) -> str:
        """``1.0% (at most 2.3% at 95% confidence, 4 of 411)`` for a one-sided estimate,
        ``18.0% (95% interval 11.0%-26.9%, 18 of 100)`` for a two-sided one."""
        if self.one_sided:
            return f"{self.rate:.1%} (at most {self.high:.1%} at 95% confidence, {self.count} of {self.total})"
        return (f"{self.rate:.1%} (95% interval {self.low:.1%}-{self.high:.1%}, "
                f"{self.count} of {self.total})")


def frr_estimate(above: int, total: int, confidence: float = CONFIDENCE) -> RateEstimate:
    """The false-reject rate of a threshold with ``above`` of ``total`` held-out good scores above it."""
    if total <= 0:
        return RateEstimate(0.0, 0.0, 1.0, 0, 0, one_sided=True)
    above = int(min(max(above, 0), total))
    high = float(stats.beta.ppf(confidence, above + 1, total - above)) if above < total else 1.0
    return RateEstimate(above / total, 0.0, high, above, total, one_sided=True)


def escape_estimate(escaped: int, total: int, confidence: float = CONFIDENCE) -> RateEstimate:
    """Clopper-Pearson interval of ``escaped`` of ``total`` known-bad images passing."""
    return proportion_estimate(escaped, total, confidence)


def proportion_estimate(count: int, total: int, confidence: float = CONFIDENCE) -> RateEstimate:
    """Two-sided Clopper-Pearson interval of a rate measured as ``count`` of ``total`` test images
    (escapes among defective images, false rejects among good ones)."""
    if total <= 0:
        return RateEstimate(0.0, 0.0, 1.0, 0, 0)
    count = int(min(max(count, 0), total))
    tail = (1.0 - confidence) / 2.0
    low = 0.0 if count == 0 else float(stats.beta.ppf(tail, count, total - count + 1))
    high = 1.0 if count == total else float(stats.beta.ppf(1.0 - tail, count + 1, total - count))
    return RateEstimate(count / total, low, high, count, int(total))


def references_needed(target: float, confidence: float = CONFIDENCE, limit: int = 100_000) -> int:
    """Fewest held-out good images for which a threshold at ``target`` has an interval within SUPPORT_FACTOR x target."""
    if target <= 0:
        return limit
    n = max(10, int(1.0 / target))
    while n < limit:
        if frr_estimate(int(math.floor(target * n + 1e-9)), n, confidence).high <= SUPPORT_FACTOR * target:
            return n
        n = int(n * 1.1) + 1
    return limit


def small_sample_warning(target: float | None, estimate: RateEstimate) -> str | None:
    """A sentence for the engineer when the held-out set is too small for the target rate, else ``None``."""
    if target is None or estimate.total == 0 or estimate.high <= SUPPORT_FACTOR * max(target, 1e-12):
        return None
    need = references_needed(target)
    return (f"{estimate.total} held-out good images cannot support a {target:.1%} false-reject rate: "
            f"expect up to {estimate.high:.1%} (one-sided 95% bound); "
            f"about {need} reference images are needed for {target:.1%} with an interval under {SUPPORT_FACTOR * target:.1%}")
