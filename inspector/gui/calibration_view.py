"""The calibration view: held-out good (and known-bad) score histograms with a draggable threshold.

Dragging the line shows the expected false-reject and escape rates at once;
releasing it makes it the operator's threshold. The scores of the recent parts
(since the model was put in use) are drawn over the held-out ones, scaled to
the same count, with the drift watch's verdict: the picture behind
``REFS DO NOT MATCH``. The policy buttons build a new
calibration, which the station swaps in as a new (undoable) model.

Two more buttons ask the window for work the view cannot do itself: *Add a
known-bad folder...* (the folder's images are scored on the model worker and
join the known-bad scores) and *Recalibrate on the last N frames...* (the
operator confirms that the recent parts were good; their scores become the
held-out good scores).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from inspector.calibration.intervals import escape_estimate, frr_estimate, small_sample_warning
from inspector.calibration.policies import calibrate, expected_rates
from inspector.core.policy import Threshold
from inspector.gui.theme import MUTED, NG_COLOR, OK_COLOR, PANEL, WARN_COLOR


RECENT_COLOR = "#4dabf7"
MIN_RECALIBRATION_FRAMES = 20
"""The fewest recent frames the view offers to recalibrate on (the drift watch's own minimum)."""
DEFAULT_RECALIBRATION_FRAMES = 200
RECENT_TIP = ("When the references do not represent production: after you confirm that these parts were all "
              "good (frames you marked defect are left out), their scores become the held-out good scores")


def histogram_bins(good: np.ndarray, bad: np.ndarray, threshold: float, count: int = 40,
                   recent: np.ndarray | None = None) -> np.ndarray:
    """Shared bin edges covering every score set and the threshold."""
    values = np.concatenate([good, bad, [threshold], recent if recent is not None else []])
    low, high = float(values.min()), float(values.max())
    span = max(high - low, abs(high) * 1e-3, 1e-9)
    return np.linspace(low - 0.05 * span, high + 0.05 * span, count + 1)


class CalibrationView(QWidget):
    """Histograms of held-out scores, a draggable threshold and the policy buttons.

    Signals:
        threshold_chosen(float): the operator dropped the line at this raw threshold.
        calibration_chosen(object): a new Calibration from a policy button.
        bad_folder_requested(): *Add a known-bad folder...* was pressed.
        recalibrate_recent_requested(int): *Recalibrate on the last N frames...* with N.
    """

    threshold_chosen = Signal(float)
    calibration_chosen = Signal(object)
    bad_folder_requested = Signal()
    recalibrate_recent_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._good = np.zeros(0)
        self._bad = np.zeros(0)
        self._recent = np.zeros(0)
        self.plot = pg.PlotWidget(background=PANEL)
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("bottom", "raw score (held-out)")
        self.plot.setLabel("left", "images")
        for axis in ("bottom", "left"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.good_curve = self.plot.plot([], [], stepMode="center", fillLevel=0, name="good (held-out)",
                                         pen=pg.mkPen(OK_COLOR, width=2), brush=pg.mkBrush(31, 163, 91, 90))
        self.bad_curve = self.plot.plot([], [], stepMode="center", fillLevel=0, name="known bad",
                                        pen=pg.mkPen(NG_COLOR, width=2), brush=pg.mkBrush(224, 49, 49, 90))
        self.recent_curve = self.plot.plot([], [], stepMode="center",
                                           pen=pg.mkPen(RECENT_COLOR, width=2, style=Qt.PenStyle.DashLine))
        self.line = pg.InfiniteLine(pos=1.0, angle=90, movable=True, pen=pg.mkPen(WARN_COLOR, width=3),
                                    hoverPen=pg.mkPen("#ffd43b", width=4),
                                    label="threshold {value:.4g}", labelOpts={"position": 0.6, "color": WARN_COLOR,
                                                                            "fill": (27, 31, 36, 200)})
        self.plot.addItem(self.line)

        self.frr_label = QLabel("—")
        self.escape_label = QLabel("—")
        self.warning_label = QLabel("")
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet(f"color: {WARN_COLOR};")
        self.warning_label.setVisible(False)
        self._target: float | None = None
        for label in (self.frr_label, self.escape_label):
            label.setStyleSheet("font-size: 16pt; font-weight: 700;")
        self.recent_label = QLabel("Recent parts: none yet")
        self.recent_label.setWordWrap(True)
        self.recent_label.setStyleSheet(f"color: {MUTED};")
        self.info_label = QLabel("No model")
        self.info_label.setStyleSheet(f"color: {MUTED};")
        self.info_label.setWordWrap(True)
        rates = QGroupBox("At this threshold")
        rates_layout = QVBoxLayout(rates)
        rates_layout.addWidget(QLabel("Expected false rejects (good parts)"))
        rates_layout.addWidget(self.frr_label)
        rates_layout.addWidget(QLabel("Expected escapes (bad parts)"))
        rates_layout.addWidget(self.escape_label)
        rates_layout.addWidget(self.info_label)
        rates_layout.addWidget(self.warning_label)
        rates_layout.addWidget(self.recent_label)

        self.frr_target = QDoubleSpinBox()
        self.frr_target.setRange(0.0, 50.0)
        self.frr_target.setDecimals(1)
        self.frr_target.setSuffix(" %")
        self.frr_target.setValue(1.0)
        self.frr_button = QPushButton("Apply target false-reject rate")
        self.f1_button = QPushButton("Apply best F1")
        self.f1_button.setToolTip("Needs known-bad images: add a known-bad folder first")
        self.bad_button = QPushButton("Add a known-bad folder…")
        self.bad_button.setToolTip("Score a folder of defective parts with the model in use: their scores "
                                   "give the escape rate and enable best F1")
        policy = QGroupBox("Policy (saved with the model)")
        policy_layout = QVBoxLayout(policy)
        row = QHBoxLayout()
        row.addWidget(self.frr_target)
        row.addWidget(self.frr_button, 1)
        policy_layout.addLayout(row)
        policy_layout.addWidget(self.f1_button)
        policy_layout.addWidget(self.bad_button)

        self.recent_count = QSpinBox()
        self.recent_count.setRange(MIN_RECALIBRATION_FRAMES, MIN_RECALIBRATION_FRAMES)
        self.recent_count.setPrefix("last ")
        self.recent_count.setSuffix(" frames")
        self.recent_button = QPushButton("Recalibrate on them…")
        self.recent_button.setToolTip(RECENT_TIP)
        recent_box = QGroupBox("Recent parts confirmed good")
        recent_row = QHBoxLayout(recent_box)
        recent_row.addWidget(self.recent_count)
        recent_row.addWidget(self.recent_button, 1)
        self._recent_available = 0
        self._count_chosen = False
        self._setting_count = False
        self.recent_count.valueChanged.connect(self._count_edited)

        side = QVBoxLayout()
        side.addWidget(rates)
        side.addWidget(policy)
        side.addWidget(recent_box)
        side.addStretch(1)
        layout = QHBoxLayout(self)
        layout.addWidget(self.plot, 1)
        layout.addLayout(side)

        self.line.sigPositionChanged.connect(lambda: self._show_rates(self.line.value()))
        self.line.sigPositionChangeFinished.connect(lambda: self.threshold_chosen.emit(float(self.line.value())))
        self.frr_button.clicked.connect(self._apply_frr)
        self.f1_button.clicked.connect(self._apply_f1)
        self.bad_button.clicked.connect(self.bad_folder_requested)
        self.recent_button.clicked.connect(lambda: self.recalibrate_recent_requested.emit(self.recent_count.value()))
        self._set_enabled(False)

    def set_calibration(self, calibration, threshold: float | None = None) -> None:
        """Show the evidence of ``calibration`` (``None``: no model) and the line at ``threshold``."""
        self._count_chosen = False
        if calibration is None:
            self._good, self._bad = np.zeros(0), np.zeros(0)
            self._set_enabled(False)
            return
        self._target = calibration.target if calibration.policy == "frr" else None
        self._good = np.asarray(calibration.good_scores, dtype=np.float64)
        self._bad = np.asarray(calibration.bad_scores, dtype=np.float64)
        value = calibration.threshold if threshold is None else threshold
        self._draw(value)
        target = f" (target {calibration.target:.3g})" if calibration.target is not None else ""
        self.info_label.setText(
            f"{self._good.size} held-out good, {self._bad.size} known bad; model threshold "
            f"{calibration.threshold:.4g} by {calibration.policy}{target}")
        self._set_enabled(self._good.size > 0)
        self.f1_button.setEnabled(self._bad.size > 0)
        self.set_threshold(value)

    def set_production(self, recent_scores, report=None) -> None:
        """Draw the recent parts' raw scores over the held-out ones, with the drift watch's ``report``.

        The recent histogram is scaled to the held-out count, so the two shapes
        compare whatever the number of frames.
        """
        self._recent = np.asarray(recent_scores, dtype=np.float64)
        if self._good.size:
            self._draw(float(self.line.value()))
        if not self._recent.size:
            self.recent_label.setText("Recent parts: none yet")
            self.recent_label.setStyleSheet(f"color: {MUTED};")
            return
        rejected = int(np.sum(Threshold(float(self.line.value())).decide_many(self._recent)))
        text = f"Recent parts: {self._recent.size}, {rejected} above the line"
        colour = MUTED
        if report is not None and report.drift is not None:
            text += f". {report.message}" if report.message else ""
            colour = NG_COLOR if report.drift else OK_COLOR
        elif report is not None:
            text += " (drift watch: too few parts yet)"
        self.recent_label.setText(text)
        self.recent_label.setStyleSheet(f"color: {colour};")

    def set_recent_available(self, count: int) -> None:
        """How many recent frames of this model the window holds (the recalibration's choice of N).

        N follows the count (up to 200) until the operator picks a value.
        """
        self._recent_available = int(count)
        enough = count >= MIN_RECALIBRATION_FRAMES and self._good.size > 0
        maximum = max(MIN_RECALIBRATION_FRAMES, int(count))
        self._setting_count = True
        self.recent_count.setMaximum(maximum)
        if not self._count_chosen:
            self.recent_count.setValue(min(maximum, DEFAULT_RECALIBRATION_FRAMES))
        self._setting_count = False
        self.recent_count.setEnabled(enough)
        self.recent_button.setEnabled(enough)
        self.recent_button.setToolTip(RECENT_TIP if enough else
                                      f"Needs {MIN_RECALIBRATION_FRAMES} frames of this model ({count} so far)")

    def _count_edited(self, _value: int) -> None:
        if not self._setting_count:
            self._count_chosen = True

    def set_busy(self, message: str) -> None:
        """Say what the window is doing for the view (scoring a folder); ``""`` when done."""
        self.bad_button.setEnabled(not message and self._good.size > 0)
        if message:
            self.info_label.setText(message)

    def _draw(self, threshold: float) -> None:
        recent = self._recent if self._recent.size else None
        edges = histogram_bins(self._good, self._bad, threshold, recent=recent)
        self.good_curve.setData(edges, np.histogram(self._good, edges)[0])
        self.bad_curve.setData(*((edges, np.histogram(self._bad, edges)[0]) if self._bad.size else ([], [])))
        if recent is not None:
            scale = self._good.size / recent.size if self._good.size else 1.0
            self.recent_curve.setData(edges, np.histogram(recent, edges)[0] * scale)
        else:
            self.recent_curve.setData([], [])
        self._sync_legend()

    def _sync_legend(self) -> None:
        """List only the curves that have data (no "known bad" entry without bad images)."""
        names = {self.good_curve: "good (held-out)", self.bad_curve: "known bad",
                 self.recent_curve: f"recent parts ({self._recent.size}, scaled to the held-out count)"}
        shown = {self.good_curve: self._good.size > 0, self.bad_curve: self._bad.size > 0,
                 self.recent_curve: self._recent.size > 0}
        listed = {sample.item: label for sample, label in self.legend.items}
        for curve, visible in shown.items():
            if visible and curve not in listed:
                self.legend.addItem(curve, names[curve])
            elif not visible and curve in listed:
                self.legend.removeItem(curve)
            elif visible and listed[curve].text != names[curve]:
                listed[curve].setText(names[curve])

    def set_threshold(self, threshold: float) -> None:
        """Move the line (``threshold_chosen`` is only emitted when the user drops it)."""
        self.line.setValue(threshold)
        self._show_rates(threshold)

    def rates(self) -> tuple[float, float | None]:
        """Expected false-reject and escape rates at the line."""
        return expected_rates(float(self.line.value()), self._good, self._bad)

    def _show_rates(self, threshold: float) -> None:
        if not self._good.size:
            return
        frr, escape = expected_rates(float(threshold), self._good, self._bad)
        rule = Threshold(threshold)
        frr_rate = frr_estimate(int(np.sum(rule.decide_many(self._good))), self._good.size)
        self.frr_label.setText(f"{frr * 100:.1f} %  (at most {frr_rate.high * 100:.1f} %)")
        self.frr_label.setToolTip(f"{frr_rate.describe()}: the bound is for unseen good parts")
        if escape is None:
            self.escape_label.setText("unknown: no bad images")
            self.escape_label.setToolTip("Load known-bad images to measure the escape rate at the line")
        else:
            escape_rate = escape_estimate(int(np.sum(~rule.decide_many(self._bad))), self._bad.size)
            self.escape_label.setText(f"{escape * 100:.1f} %  ({escape_rate.low * 100:.1f}-"
                                      f"{escape_rate.high * 100:.1f} %)")
            self.escape_label.setToolTip(f"{escape_rate.describe()} of the known-bad images")
        warning = small_sample_warning(self._target, frr_rate)
        self.warning_label.setText(warning or "")
        self.warning_label.setVisible(bool(warning))
        self.escape_label.setStyleSheet(
            f"font-size: {'10' if escape is None else '16'}pt; font-weight: 700; color: "
            f"{MUTED if escape is None else (NG_COLOR if escape > 0 else OK_COLOR)};")

    def _apply_frr(self) -> None:
        self._emit(lambda: calibrate(self._good, self._bad, policy="frr", target=self.frr_target.value() / 100))

    def _apply_f1(self) -> None:
        self._emit(lambda: calibrate(self._good, self._bad, policy="f1"))

    def _emit(self, build) -> None:
        try:
            calibration = build()
        except ValueError as exc:
            self.info_label.setText(str(exc))
            return
        self.calibration_chosen.emit(calibration)

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self.frr_button, self.f1_button, self.frr_target, self.bad_button):
            widget.setEnabled(enabled)
        if not enabled:
            self.recent_count.setEnabled(False)
            self.recent_button.setEnabled(False)
        self.line.setMovable(enabled)
        if not enabled:
            self.good_curve.setData([], [])
            self.bad_curve.setData([], [])
            self.recent_curve.setData([], [])
            self._recent = np.zeros(0)
            self._sync_legend()
            self.frr_label.setText("—")
            self.escape_label.setText("—")
            self.info_label.setText("No model")
        self.line.setPen(pg.mkPen(WARN_COLOR if enabled else MUTED, width=3))
