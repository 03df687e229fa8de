"""The one decision rule: a raw score strictly above the threshold is NG.

Every place that turns a raw score into a verdict or a normalized score (the
pipeline, the CLI, the workers, the batch report, the verdict panel, the score
history, the batch table) goes through a :class:`Threshold`, so the rule is
written once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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


@dataclass(frozen=True)
class Threshold:
    """A raw image threshold and the rule that decides with it.

    Attributes:
        raw: The threshold in the detector's raw score units (positive, finite).

    Raises:
        ThresholdError: for a threshold that is not a positive finite number.
    """

    raw: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw", validate_threshold(self.raw))

    @classmethod
    def of(cls, value: "Threshold | float") -> "Threshold":
        """``value`` itself if it is a :class:`Threshold`, else a new one around the raw number."""
        return value if isinstance(value, Threshold) else cls(value)

    def decide(self, raw_score: float) -> bool:
        """``True`` (NG) when ``raw_score`` is strictly above the threshold."""
        return bool(float(raw_score) > self.raw)

    def decide_many(self, raw_scores) -> np.ndarray:
        """Boolean NG mask of an array of raw scores (NaN is never NG)."""
        return np.asarray(raw_scores, dtype=np.float64) > self.raw

    def verdict(self, raw_score: float) -> str:
        """``"NG"`` or ``"OK"``."""
        return "NG" if self.decide(raw_score) else "OK"

    def normalize(self, raw_score: float) -> float:
        """The score on the normalized scale, on which the threshold is exactly 1.0."""
        return float(raw_score) / self.raw

    def normalize_many(self, raw_scores) -> np.ndarray:
        """:meth:`normalize` of an array of raw scores."""
        return np.asarray(raw_scores, dtype=np.float64) / self.raw

    def counts(self, raw_scores) -> tuple[int, int]:
        """OK and NG counts of finite raw scores."""
        scores = np.asarray(raw_scores, dtype=np.float64)
        scores = scores[np.isfinite(scores)]
        ng = int(np.count_nonzero(self.decide_many(scores)))
        return int(scores.size) - ng, ng

    def __float__(self) -> float:
        return self.raw
