"""Threshold policies, the rates they imply, and the verdict rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from inspector.calibration.policies import (
    POLICIES,
    Calibration,
    calibrate,
    expected_rates,
    threshold_for_escape,
    threshold_for_f1,
    threshold_for_frr,
)
from inspector.core.policy import ThresholdError, validate_threshold


def _frr(threshold: float, good) -> float:
    return float(np.mean(np.asarray(good) > threshold))


def _escape(threshold: float, bad) -> float:
    return float(np.mean(np.asarray(bad) <= threshold))


def _f1(threshold: float, good, bad) -> float:
    good, bad = np.asarray(good), np.asarray(bad)
    tp = np.sum(bad > threshold)
    fp = np.sum(good > threshold)
    fn = bad.size - tp
    return 2 * tp / max(2 * tp + fp + fn, 1)


def _score_sets():
    rng = np.random.default_rng(7)
    yield rng.gamma(4.0, 2.0, 40) + 1.0
    yield rng.gamma(4.0, 2.0, 7) + 1.0
    yield np.round(rng.gamma(4.0, 2.0, 50) + 1.0)  # many ties
    yield np.array([3.0, 3.0, 3.0, 5.0, 5.0, 8.0])
    yield np.array([2.5])


# ---- FRR policy ----------------------------------------------------------------------------

@pytest.mark.parametrize("target", [0.0, 0.01, 0.05, 0.1, 0.2, 0.3333, 0.5, 0.9])
def test_frr_threshold_meets_target_and_is_lowest(target: float) -> None:
    for good in _score_sets():
        threshold = threshold_for_frr(good, target)
        assert _frr(threshold, good) <= target + 1e-12
        # Lowest such: every good score at or below it is needed; moving below the highest
        # accepted score rejects one more image and breaks the target.
        accepted = good[good <= threshold]
        assert accepted.size, "the threshold rejects every good image"
        just_below = np.nextafter(accepted.max(), -np.inf)
        assert _frr(just_below, good) > target
        # It does not sit on or past the next rejected sample either.
        rejected = good[good > threshold]
        if rejected.size:
            assert threshold < rejected.min()


def test_frr_threshold_is_between_samples_not_on_one() -> None:
    good = np.arange(1.0, 11.0)  # 1..10
    threshold = threshold_for_frr(good, 0.1)  # one of ten may be rejected
    assert threshold == pytest.approx(9.5)
    assert expected_rates(threshold, good) == (pytest.approx(0.1), None)


def test_zero_frr_puts_threshold_above_the_max() -> None:
    for good in _score_sets():
        threshold = threshold_for_frr(good, 0.0)
        assert threshold > good.max()
        assert _frr(threshold, good) == 0.0


def test_zero_frr_margin_is_modest() -> None:
    good = np.array([10.0, 11.0, 12.0, 20.0])
    threshold = threshold_for_frr(good, 0.0)
    assert 20.0 < threshold <= 20.0 + 0.1 * (20.0 - 11.5) + 1e-9


def test_small_target_with_few_images_rejects_none() -> None:
    good = np.linspace(1, 2, 30)
    assert threshold_for_frr(good, 0.01) > 2.0  # 1% of 30 images is less than one image


@pytest.mark.parametrize("target", [-0.1, 1.0, 1.5, float("nan")])
def test_frr_target_out_of_range(target: float) -> None:
    with pytest.raises(ValueError, match="false-reject"):
        threshold_for_frr([1.0, 2.0], target)


def test_frr_needs_scores() -> None:
    with pytest.raises(ValueError, match="no held-out good scores"):
        threshold_for_frr([], 0.05)


def test_frr_ignores_input_order() -> None:
    good = np.random.default_rng(3).gamma(3.0, 1.0, 25) + 0.5
    assert threshold_for_frr(good, 0.1) == threshold_for_frr(good[::-1], 0.1)


# ---- F1 policy -----------------------------------------------------------------------------

def test_f1_separates_perfectly_separable_scores() -> None:
    rng = np.random.default_rng(0)
    good = rng.uniform(1.0, 5.0, 30)
    bad = rng.uniform(6.0, 9.0, 10)
    threshold = threshold_for_f1(good, bad)
    assert good.max() < threshold < bad.min()
    assert expected_rates(threshold, good, bad) == (0.0, 0.0)
    assert _f1(threshold, good, bad) == 1.0


def test_f1_is_optimal_on_overlapping_scores() -> None:
    rng = np.random.default_rng(1)
    for _ in range(5):
        good = rng.normal(5.0, 1.0, 40).clip(0.5)
        bad = rng.normal(6.5, 1.5, 15).clip(0.5)
        threshold = threshold_for_f1(good, bad)
        values = np.unique(np.concatenate([good, bad]))
        candidates = np.concatenate([values - 1e-7, values, values + 1e-7])
        best = max(_f1(t, good, bad) for t in candidates)
        assert _f1(threshold, good, bad) == pytest.approx(best)


def test_f1_needs_bad_scores() -> None:
    with pytest.raises(ValueError, match="known-bad"):
        threshold_for_f1([1.0, 2.0], [])


# ---- escape policy -------------------------------------------------------------------------

def test_zero_escape_target_lets_no_bad_image_through() -> None:
    bad = np.array([4.0, 7.5, 9.0, 4.2])
    threshold = threshold_for_escape(bad, 0.0)
    assert threshold < bad.min()
    assert _escape(threshold, bad) == 0.0
    calibration = calibrate([1.0, 2.0, 3.0], bad, policy="escape")
    assert calibration.target == 0.0 and calibration.expected_escape == 0.0


@pytest.mark.parametrize("target", [0.0, 0.1, 0.25, 0.5, 0.8])
def test_escape_threshold_meets_target_and_is_highest(target: float) -> None:
    rng = np.random.default_rng(5)
    for bad in (rng.gamma(5.0, 2.0, 20) + 1.0, np.round(rng.gamma(5.0, 1.0, 24) + 1.0),
                np.array([4.0, 4.0, 5.0, 7.0]), np.array([3.0, 3.0, 3.0, 3.0, 6.0])):
        threshold = threshold_for_escape(bad, target)
        assert _escape(threshold, bad) <= target + 1e-12, (bad, target, threshold)
        # Highest such: the lowest caught bad score cannot be let through as well.
        caught = bad[bad > threshold]
        assert _escape(caught.min(), bad) > target


def test_escape_threshold_with_tied_bad_scores() -> None:
    # One of four may escape, but the two lowest are tied: letting one through lets both through.
    bad = [1.0, 1.0, 2.0, 3.0]
    threshold = threshold_for_escape(bad, 0.25)
    assert threshold < 1.0
    assert _escape(threshold, bad) == 0.0
    assert threshold_for_escape([1.0, 2.0, 2.0, 3.0], 0.25) == 1.5


@pytest.mark.parametrize("target", [-0.5, 1.0, 2.0])
def test_escape_target_out_of_range(target: float) -> None:
    with pytest.raises(ValueError, match="escape"):
        threshold_for_escape([5.0, 6.0], target)


def test_escape_needs_bad_scores() -> None:
    with pytest.raises(ValueError, match="known-bad"):
        calibrate([1.0, 2.0], [], policy="escape")


# ---- calibrate() ---------------------------------------------------------------------------

def test_calibrate_default_is_one_percent_frr() -> None:
    good = np.linspace(1.0, 3.0, 200)
    calibration = calibrate(good)
    assert calibration.policy == "frr" and calibration.target == 0.01
    assert calibration.threshold == threshold_for_frr(good, 0.01)
    assert calibration.expected_frr == pytest.approx(0.01)
    assert calibration.expected_escape is None
    assert calibration.good_scores == tuple(good) and calibration.bad_scores == ()


def test_calibrate_f1_reports_both_rates() -> None:
    calibration = calibrate([1.0, 2.0, 3.0, 4.0], [3.5, 8.0, 9.0], policy="f1")
    assert calibration.policy == "f1" and calibration.target is None
    assert calibration.expected_frr == _frr(calibration.threshold, [1.0, 2.0, 3.0, 4.0])
    assert calibration.expected_escape == _escape(calibration.threshold, [3.5, 8.0, 9.0])


def test_calibrate_manual() -> None:
    calibration = calibrate([1.0, 2.0, 3.0, 4.0], [2.5, 6.0], policy="manual", threshold=2.0)
    assert calibration.threshold == 2.0 and calibration.policy == "manual" and calibration.target is None
    assert calibration.expected_frr == 0.5  # 3 and 4 are above 2
    assert calibration.expected_escape == 0.0  # 2.5 and 6 are both caught


def test_calibrate_manual_needs_a_value() -> None:
    with pytest.raises(ValueError, match="manual"):
        calibrate([1.0, 2.0], policy="manual")


def test_calibrate_unknown_policy() -> None:
    with pytest.raises(ValueError, match="unknown policy"):
        calibrate([1.0, 2.0], policy="median")
    assert POLICIES == ("frr", "f1", "escape", "manual")


@pytest.mark.parametrize("bad_value", [0, 0.0, -1.0, -1e-12, float("nan"), float("inf"), -float("inf"), "abc", None])
def test_invalid_thresholds(bad_value) -> None:
    with pytest.raises(ThresholdError):
        validate_threshold(bad_value)
    with pytest.raises(ThresholdError):
        calibrate([1.0, 2.0], policy="manual", threshold=bad_value if bad_value is not None else "none")
    base = calibrate([1.0, 2.0, 3.0])
    with pytest.raises(ThresholdError):
        base.with_threshold(bad_value)


def test_threshold_error_is_a_value_error() -> None:
    assert issubclass(ThresholdError, ValueError)


def test_valid_thresholds() -> None:
    assert validate_threshold(3) == 3.0 and isinstance(validate_threshold(3), float)
    assert validate_threshold("2.5") == 2.5
    assert validate_threshold(np.float32(0.125)) == 0.125
    assert validate_threshold(1e-300) == 1e-300


# ---- rates ---------------------------------------------------------------------------------

def test_expected_rates() -> None:
    good = [1.0, 2.0, 3.0, 4.0]
    bad = [3.0, 5.0, 6.0, 7.0, 8.0]
    frr, escape = expected_rates(3.0, good, bad)
    assert frr == 0.25  # only 4 > 3; a score equal to the threshold is OK
    assert escape == 0.2  # 3 <= 3 escapes
    assert expected_rates(0.5, good, bad) == (1.0, 0.0)
    assert expected_rates(100.0, good, bad) == (0.0, 1.0)
    assert expected_rates(2.5, good) == (0.5, None)
    assert expected_rates(2.5, [], []) == (0.0, None)


# ---- Calibration ---------------------------------------------------------------------------

def _calibration() -> Calibration:
    rng = np.random.default_rng(11)
    return calibrate(rng.gamma(4.0, 1.0, 30) + 1.0, rng.gamma(4.0, 1.0, 6) + 9.0, policy="f1")


def test_calibration_dict_round_trip_through_json() -> None:
    for calibration in (_calibration(), calibrate([1.0, 2.0, 3.0], policy="frr", target=0.0)):
        data = json.loads(json.dumps(calibration.to_dict()))
        restored = Calibration.from_dict(data)
        assert restored == calibration
        assert isinstance(restored.good_scores, tuple) and isinstance(restored.bad_scores, tuple)
    assert Calibration.from_dict(calibrate([1.0, 2.0]).to_dict()).expected_escape is None


def test_with_threshold_recomputes_rates() -> None:
    calibration = _calibration()
    good, bad = np.array(calibration.good_scores), np.array(calibration.bad_scores)
    threshold = float(np.median(good))
    changed = calibration.with_threshold(threshold)
    assert changed.threshold == threshold
    assert changed.policy == "manual" and changed.target is None
    assert changed.expected_frr == pytest.approx(_frr(threshold, good))
    assert changed.expected_frr > 0.4
    assert changed.expected_escape == _escape(threshold, bad)
    assert changed.good_scores == calibration.good_scores and changed.bad_scores == calibration.bad_scores
    # The original is untouched (frozen, shared by the model it belongs to).
    assert calibration.policy == "f1" and calibration.threshold != threshold
    higher = calibration.with_threshold(float(bad.max()) + 1.0)
    assert higher.expected_frr == 0.0 and higher.expected_escape == 1.0


def test_calibration_is_frozen() -> None:
    calibration = _calibration()
    with pytest.raises(AttributeError):
        calibration.threshold = 1.0  # type: ignore[misc]
