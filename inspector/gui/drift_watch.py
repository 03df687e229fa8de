"""The window's drift watch: each decided raw score into a :class:`DriftMonitor`, its report to the
status bar and the calibration view, a message when drift starts."""

from __future__ import annotations

from typing import Any

from inspector.calibration.drift import DriftMonitor


class DriftWatch:
    """Keeps the drift monitor of the model in use and shows what it reports.

    Args:
        status: The station's status bar (``set_drift``, ``show_message``).
        calibration: The calibration view (``set_production``, ``set_recent_available``).
        recent_count: Returns how many scores the score history holds.
    """

    def __init__(self, status, calibration, recent_count) -> None:
        self.status = status
        self.calibration = calibration
        self._recent_count = recent_count
        self.monitor: DriftMonitor | None = None

    def add(self, raw_score: float) -> None:
        """One decided frame's raw score; shows a new report when the monitor gives one."""
        monitor = self.monitor
        if monitor is None:
            return
        was = monitor.report.drift if monitor.report is not None else None
        report = monitor.add(raw_score)
        if report is not None:
            self.calibration.set_recent_available(self._recent_count())
            self.status.set_drift(report)
            self.calibration.set_production(monitor.recent, report)
            if report.drift and not was:
                self.status.show_message(f"{report.message}. Calibration tab (Ctrl+K): compare, or recalibrate on "
                                         "recent parts confirmed good", 20000)

    def reset(self, model: Any, threshold: float, keep_recent: bool = False) -> None:
        """Watch against ``model``'s held-out good scores; ``keep_recent`` replays the recent frames."""
        recent = self.monitor.recent if keep_recent and self.monitor is not None else []
        self.monitor = DriftMonitor(model.calibration.good_scores, threshold)
        report = None
        for raw_score in recent:
            report = self.monitor.add(float(raw_score)) or report
        self.status.set_drift(report)
        self.calibration.set_production(self.monitor.recent if len(recent) else [], report)

    def set_threshold(self, threshold: float) -> None:
        """The station's threshold changed."""
        if self.monitor is not None:
            self.monitor.threshold = float(threshold)
