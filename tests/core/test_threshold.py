"""The one decision rule: strictly above the threshold is NG; the threshold is 1.0 on the normalized scale."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from inspector.core.policy import Threshold, ThresholdError


def test_verdict_is_strictly_above_threshold() -> None:
    rule = Threshold(2.0)
    assert not rule.decide(2.0)
    assert rule.decide(math.nextafter(2.0, 3.0))
    assert not rule.decide(1.0)
    assert rule.verdict(2.5) == "NG" and rule.verdict(2.0) == "OK"


def test_decide_many_agrees_with_decide() -> None:
    rule = Threshold(0.5)
    scores = np.array([0.1, 0.5, math.nextafter(0.5, 1.0), 3.0, np.nan])
    mask = rule.decide_many(scores)
    assert mask.dtype == bool
    assert mask.tolist() == [False, False, True, True, False], "NaN is never NG"
    assert mask[:4].tolist() == [rule.decide(s) for s in scores[:4]]
    assert rule.counts(scores) == (2, 2), "unreadable (NaN) scores are not counted"


def test_normalized_threshold_is_one() -> None:
    rule = Threshold(2.0)
    assert rule.normalize(2.0) == 1.0
    assert rule.normalize(3.0) == 1.5
    assert Threshold(4.0).normalize(0.0) == 0.0
    np.testing.assert_array_equal(rule.normalize_many([1.0, 4.0]), [0.5, 2.0])


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "x", None])
def test_unusable_thresholds_are_refused(bad) -> None:
    with pytest.raises(ThresholdError):
        Threshold(bad)


def test_threshold_is_frozen_and_of_passes_through() -> None:
    rule = Threshold(np.float32(0.25))
    assert type(rule.raw) is float and rule.raw == 0.25
    assert Threshold.of(rule) is rule and Threshold.of(0.25) == rule
    assert float(rule) == 0.25
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.raw = 1.0  # type: ignore[misc]
