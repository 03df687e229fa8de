"""The threshold policy: a pure function from raw score and threshold to a verdict."""

from __future__ import annotations

import math


class ThresholdError(ValueError):
    """Raised for a threshold that cannot be used (non-positive or not finite)."""


def validate_threshold(threshold: float) -> float:
    """Return ``threshold`` as a float, or raise :class:`ThresholdError` if it is unusable."""
    try:
        value = float(threshold)
    except (TypeError, ValueError) as exc:
        raise ThresholdError(f"threshold must be a number, got {threshold!r}") from exc
    if not math.isfinite(value) or value <= 0:
        raise ThresholdError(f"threshold must be a positive finite number, got {value}")
    return value


def normalize(raw_score: float, threshold: float) -> float:
    """Map a raw score onto the normalized scale on which the threshold is exactly 1.0."""
    return float(raw_score) / threshold


def is_anomalous(raw_score: float, threshold: float) -> bool:
    """The decision: strictly above the threshold is NG."""
    return float(raw_score) > threshold
