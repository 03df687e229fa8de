"""Choosing an image threshold from held-out scores, and the error rates it implies.

Thresholds are set on held-out good scores (never on training scores, which are
biased low). Policies: a target false-reject rate on good images; with known-bad
images, the best F1 or a target escape rate; or a manual value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from inspector.calibration.intervals import RateEstimate, escape_estimate, frr_estimate, small_sample_warning
from inspector.core.policy import validate_threshold

POLICIES = ("frr", "f1", "escape", "manual")


@dataclass(frozen=True)
class Calibration:
    """An image threshold with the evidence behind it.

    Attributes:
        threshold: Raw-score threshold; scores strictly above it are NG.
        policy: ``frr``, ``f1``, ``escape`` or ``manual``.
        target: The policy's target (FRR or escape rate), if any.
        good_scores: Held-out raw scores of good images.
        bad_scores: Raw scores of known-bad images (may be empty).
        expected_frr: Fraction of good scores above the threshold.
        expected_escape: Fraction of bad scores at or below it; ``None`` without bad images.
    """

    threshold: float
    policy: str
    target: float | None
    good_scores: tuple[float, ...] = field(repr=False)
    bad_scores: tuple[float, ...] = field(default=(), repr=False)
    expected_frr: float = 0.0
    expected_escape: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready form for the model file."""
        return {
            "threshold": self.threshold,
            "policy": self.policy,
            "target": self.target,
            "good_scores": list(self.good_scores),
            "bad_scores": list(self.bad_scores),
            "expected_frr": self.expected_frr,
            "expected_escape": self.expected_escape,
            "expected_frr_interval": [self.frr.low, self.frr.high],
            "n_held_out": len(self.good_scores),
            "expected_escape_interval": None if self.escape is None else [self.escape.low, self.escape.high],
            "n_bad": len(self.bad_scores),
        }

    @property
    def frr(self) -> RateEstimate:
        """The false-reject rate on the held-out good scores, with its 95 % interval for unseen parts."""
        above = int(np.sum(np.asarray(self.good_scores, dtype=np.float64) > self.threshold))
        return frr_estimate(above, len(self.good_scores))

    @property
    def escape(self) -> RateEstimate | None:
        """The escape rate on the known-bad scores with its 95 % interval; ``None`` without bad images."""
        if not self.bad_scores:
            return None
        escaped = int(np.sum(np.asarray(self.bad_scores, dtype=np.float64) <= self.threshold))
        return escape_estimate(escaped, len(self.bad_scores))

    @property
    def warning(self) -> str | None:
        """Why the rates shown cannot be as good as asked (too few held-out images), if so."""
        return small_sample_warning(self.target if self.policy == "frr" else None, self.frr)

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        """Inverse of :meth:`to_dict`."""
        return cls(
            threshold=float(data["threshold"]),
            policy=str(data["policy"]),
            target=None if data.get("target") is None else float(data["target"]),
            good_scores=tuple(float(v) for v in data.get("good_scores", [])),
            bad_scores=tuple(float(v) for v in data.get("bad_scores", [])),
            expected_frr=float(data.get("expected_frr", 0.0)),
            expected_escape=None if data.get("expected_escape") is None else float(data["expected_escape"]),
        )

    def with_threshold(self, threshold: float) -> "Calibration":
        """The same evidence with a manual threshold and its rates."""
        threshold = validate_threshold(threshold)
        frr, escape = expected_rates(threshold, self.good_scores, self.bad_scores)
        return replace(self, threshold=threshold, policy="manual", target=None,
                       expected_frr=frr, expected_escape=escape)


def expected_rates(threshold: float, good: Sequence[float], bad: Sequence[float] = ()) -> tuple[float, float | None]:
    """False-reject rate on good scores and escape rate on bad scores at ``threshold``."""
    good_arr = np.asarray(good, dtype=np.float64)
    bad_arr = np.asarray(bad, dtype=np.float64)
    frr = float(np.mean(good_arr > threshold)) if good_arr.size else 0.0
    escape = float(np.mean(bad_arr <= threshold)) if bad_arr.size else None
    return frr, escape


def threshold_for_frr(good: Sequence[float], target_frr: float) -> float:
    """The lowest threshold whose false-reject rate on ``good`` is at most ``target_frr``.

    With few images the empirical quantile is coarse; the threshold is placed
    halfway to the next good score above so that it does not sit on a sample.
    """
    if not 0 <= target_frr < 1:
        raise ValueError(f"target false-reject rate must be in [0, 1), got {target_frr}")
    scores = np.sort(np.asarray(good, dtype=np.float64))
    if scores.size == 0:
        raise ValueError("no held-out good scores to calibrate on")
    allowed = int(math.floor(target_frr * scores.size + 1e-9))
    index = scores.size - 1 - allowed
    threshold = float(scores[index])
    if allowed > 0:
        threshold = (threshold + float(scores[index + 1])) / 2.0
    else:
        # Nothing may be rejected: add a margin of one typical spread of the upper tail.
        spread = float(scores[-1] - np.median(scores)) if scores.size > 1 else abs(threshold) * 0.05
        threshold += 0.1 * max(spread, 1e-9)
    return threshold


def threshold_for_escape(bad: Sequence[float], target_escape: float) -> float:
    """The highest threshold whose escape rate on ``bad`` is at most ``target_escape``."""
    if not 0 <= target_escape < 1:
        raise ValueError(f"target escape rate must be in [0, 1), got {target_escape}")
    scores = np.sort(np.asarray(bad, dtype=np.float64))
    if scores.size == 0:
        raise ValueError("the escape-rate policy needs known-bad images (--bad DIR)")
    allowed = int(math.floor(target_escape * scores.size + 1e-9))
    # Bad scores at or below the threshold escape: keep at most `allowed` of them there.
    # The threshold stays below scores[allowed] and every score tied with it.
    caught = scores[allowed]
    escaping = scores[scores < caught]
    if escaping.size == 0:
        return float(np.nextafter(caught, -np.inf))
    return float((escaping[-1] + caught) / 2.0)


def threshold_for_f1(good: Sequence[float], bad: Sequence[float]) -> float:
    """The threshold with the best F1 (NG as the positive class) over good and bad scores."""
    good_arr = np.asarray(good, dtype=np.float64)
    bad_arr = np.asarray(bad, dtype=np.float64)
    if bad_arr.size == 0:
        raise ValueError("the F1 policy needs known-bad images (--bad DIR)")
    candidates = np.unique(np.concatenate([good_arr, bad_arr]))
    midpoints = np.concatenate([[candidates[0] - 1e-9], (candidates[:-1] + candidates[1:]) / 2.0])
    best_f1, best = -1.0, float(midpoints[0])
    for threshold in midpoints:
        true_pos = np.sum(bad_arr > threshold)
        false_pos = np.sum(good_arr > threshold)
        false_neg = bad_arr.size - true_pos
        f1 = 2 * true_pos / max(2 * true_pos + false_pos + false_neg, 1)
        if f1 > best_f1:
            best_f1, best = f1, float(threshold)
    return best


def calibrate(good: Sequence[float], bad: Sequence[float] = (), policy: str = "frr",
              target: float | None = None, threshold: float | None = None) -> Calibration:
    """Choose a threshold by ``policy`` and report the rates it implies.

    Args:
        good: Held-out raw scores of good images.
        bad: Raw scores of known-bad images (needed for ``f1`` and ``escape``).
        policy: ``frr`` (default target 0.01), ``f1``, ``escape`` (default target 0.0) or ``manual``.
        target: The policy's target rate.
        threshold: The value for ``manual``.
    """
    if policy == "frr":
        target = 0.01 if target is None else float(target)
        value = threshold_for_frr(good, target)
    elif policy == "f1":
        value = threshold_for_f1(good, bad)
        target = None
    elif policy == "escape":
        target = 0.0 if target is None else float(target)
        value = threshold_for_escape(bad, target)
    elif policy == "manual":
        if threshold is None:
            raise ValueError("the manual policy needs a threshold value")
        value, target = threshold, None
    else:
        raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    value = validate_threshold(value)
    frr, escape = expected_rates(value, good, bad)
    return Calibration(
        threshold=value, policy=policy, target=target,
        good_scores=tuple(float(v) for v in good), bad_scores=tuple(float(v) for v in bad),
        expected_frr=frr, expected_escape=escape,
    )
