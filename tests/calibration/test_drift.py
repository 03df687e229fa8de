"""The drift test: quiet on parts like the references, loud on a shifted population."""

from __future__ import annotations

import numpy as np

from inspector.calibration.drift import MIN_FRAMES, DriftMonitor, drift_test
from inspector.calibration.policies import calibrate


def _model_scores(seed: int = 0):
    held_out = np.random.default_rng(seed).normal(10.0, 1.0, size=200)
    return held_out, calibrate(held_out).threshold


def test_same_population_is_not_drift_in_most_draws():
    held_out, threshold = _model_scores()
    rng = np.random.default_rng(1)
    flagged = [drift_test(held_out, threshold, rng.normal(10.0, 1.0, size=60)).drift for _ in range(200)]
    assert np.mean(flagged) <= 0.05


def test_shifted_good_population_is_reported_as_references_not_representing_parts():
    held_out, threshold = _model_scores()
    recent = np.random.default_rng(2).normal(11.0, 1.0, size=30)
    report = drift_test(held_out, threshold, recent)
    assert report.drift is True
    assert "do not represent" in report.message
    assert report.to_dict()["shift_test"]["p_value"] < 0.005


def test_too_few_frames_is_undecided():
    held_out, threshold = _model_scores()
    report = drift_test(held_out, threshold, [10.0] * (MIN_FRAMES - 1))
    assert report.drift is None and "watching" in report.message


def test_monitor_reports_after_enough_frames():
    held_out, threshold = _model_scores()
    monitor = DriftMonitor(held_out, threshold, every=5)
    reports = [monitor.add(score) for score in np.random.default_rng(3).normal(12.0, 1.0, size=40)]
    assert monitor.report is not None and monitor.report.drift is True
    assert any(r is None for r in reports)  # not every frame is tested once there are enough
