"""The 95 % bounds shown with every rate, checked against simulated and known cases."""

from __future__ import annotations

import numpy as np

from inspector.calibration.intervals import escape_estimate, frr_estimate, references_needed, small_sample_warning
from inspector.calibration.policies import calibrate


def test_no_reject_among_30_cannot_promise_one_percent():
    estimate = frr_estimate(0, 30)
    assert estimate.rate == 0.0 and estimate.low == 0.0
    assert 0.09 < estimate.high < 0.10  # Beta(1, 30) 95th percentile: 1 - 0.05 ** (1 / 30)
    warning = small_sample_warning(0.01, estimate)
    assert warning is not None and "30 held-out" in warning


def test_bound_tightens_with_more_references_and_no_warning_for_many():
    assert frr_estimate(4, 411).high < frr_estimate(1, 100).high < frr_estimate(0, 30).high
    assert small_sample_warning(0.01, frr_estimate(4, 411)) is None
    assert 100 < references_needed(0.01) < 1000


def test_upper_bound_covers_the_true_rate_of_conformal_thresholds():
    """Exchangeable scores: the threshold's true FRR is below the bound in about 95 % of draws."""
    rng = np.random.default_rng(0)
    covered = []
    for _ in range(400):
        held_out = rng.normal(size=25)
        calibration = calibrate(held_out, policy="frr", target=0.05)
        true_frr = 0.5 * (1 - _erf(calibration.threshold / np.sqrt(2)))
        covered.append(true_frr <= calibration.frr.high)
    # At least 95 % up to sampling noise; a little more because the threshold sits halfway between scores.
    assert 0.93 <= np.mean(covered) <= 0.995


def test_escape_interval_is_clopper_pearson():
    estimate = escape_estimate(10, 50)
    assert estimate.rate == 0.2
    assert abs(estimate.low - 0.1003) < 1e-3 and abs(estimate.high - 0.3372) < 1e-3
    assert escape_estimate(0, 20).low == 0.0 and escape_estimate(20, 20).high == 1.0


def test_calibration_carries_intervals_into_the_model_file_dict():
    data = calibrate(np.arange(1.0, 101.0), [50.0, 200.0, 300.0]).to_dict()
    assert data["n_held_out"] == 100 and data["n_bad"] == 3
    low, high = data["expected_frr_interval"]
    assert low == 0.0 and high > data["expected_frr"]
    assert len(data["expected_escape_interval"]) == 2


def _erf(x: float) -> float:
    from math import erf

    return erf(x)


def test_false_reject_estimates_read_as_an_upper_bound_and_escapes_as_an_interval() -> None:
    from inspector.calibration.intervals import escape_estimate, frr_estimate

    # 32 of 100 good images above a threshold: the one-sided bound, not "0.0%-40.5%".
    frr = frr_estimate(32, 100)
    assert frr.one_sided and frr.low == 0.0 and 0.32 < frr.high < 0.45
    assert frr.describe() == f"32.0% (at most {frr.high:.1%} at 95% confidence, 32 of 100)"
    escape = escape_estimate(18, 100)
    assert not escape.one_sided and 0.0 < escape.low < 0.18 < escape.high
    assert escape.describe() == f"18.0% (95% interval {escape.low:.1%}-{escape.high:.1%}, 18 of 100)"
