"""The operator panel: threshold slider and spin box, overlay opacity, segmentation mode.

The operator sees one unit: the threshold relative to the model's calibrated
one (1.00 = calibrated), as the score history and the verdict panel show
scores; the raw value is in the line under it. The slider moves on a
logarithmic scale around the calibrated threshold. Its
signal is debounced (a single-shot timer), so dragging re-decides the history
a few times a second rather than on every pixel of movement.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from inspector.gui.theme import MUTED
from inspector.workers.map_plan import SEGMENTATION_MODES

SLIDER_STEPS = 1000
DEBOUNCE_MS = 120


class OperatorPanel(QWidget):
    """Controls the operator may touch during a run.

    Signals:
        threshold_changed(float): the raw threshold, debounced (the spin box shows it relative
            to the calibrated threshold).
        threshold_reset(): go back to the model's calibrated threshold.
        opacity_changed(float): heatmap opacity, 0..1.
        segmentation_mode_changed(str): one of ``SEGMENTATION_MODES``.
    """

    threshold_changed = Signal(float)
    threshold_reset = Signal()
    opacity_changed = Signal(float)
    segmentation_mode_changed = Signal(str)

    def __init__(self, opacity: float = 0.5, segmentation_mode: str = "fast", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lo, self._hi = 0.1, 10.0
        self._calibrated = 1.0
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._emit_threshold)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.spin = QDoubleSpinBox()
        self.spin.setKeyboardTracking(False)
        self.spin.setMinimumWidth(110)
        self.spin.setDecimals(3)
        self.spin.setSingleStep(0.01)
        self.spin.setSuffix(" x cal.")
        self.spin.setToolTip("Threshold relative to the model's calibrated threshold (1.000 = calibrated)")
        self.raw_label = QLabel("")
        self.raw_label.setStyleSheet(f"color: {MUTED};")
        self.reset_button = QPushButton("Calibrated")
        self.reset_button.setToolTip("Use the threshold stored with the model")
        self.calibration_label = QLabel("")
        self.calibration_label.setStyleSheet(f"color: {MUTED};")
        self.calibration_label.setWordWrap(True)
        threshold_box = QGroupBox("Threshold")
        row = QHBoxLayout()
        row.addWidget(self.spin)
        row.addWidget(self.reset_button)
        box_layout = QVBoxLayout(threshold_box)
        box_layout.addWidget(self.slider)
        box_layout.addLayout(row)
        box_layout.addWidget(self.raw_label)
        box_layout.addWidget(self.calibration_label)

        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(opacity * 100))
        self.mode_combo = QComboBox()
        for key, label in SEGMENTATION_MODES.items():
            self.mode_combo.addItem(label, key)
        self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(segmentation_mode)))
        display_box = QGroupBox("Defect map")
        form = QFormLayout(display_box)
        form.addRow("Opacity", self.opacity_slider)
        form.addRow("Maps", self.mode_combo)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(threshold_box)
        layout.addWidget(display_box)

        self.slider.valueChanged.connect(self._slider_moved)
        self.spin.valueChanged.connect(self._spin_changed)
        self._show_model(False)  # no threshold to show before a model: not "0.000 x cal."
        self.reset_button.clicked.connect(self.threshold_reset)
        self.opacity_slider.valueChanged.connect(lambda v: self.opacity_changed.emit(v / 100.0))
        self.mode_combo.currentIndexChanged.connect(
            lambda _: self.segmentation_mode_changed.emit(self.mode_combo.currentData()))

    @property
    def threshold(self) -> float:
        """The raw threshold shown (the spin box's relative value times the calibrated threshold)."""
        return float(self.spin.value()) * self._calibrated

    @property
    def relative_threshold(self) -> float:
        """The threshold as the operator sees it: 1.0 = the calibrated threshold."""
        return float(self.spin.value())

    def set_scale(self, calibrated: float, low: float, high: float, note: str = "") -> None:
        """Set the slider's range (raw scores) around the model's ``calibrated`` threshold."""
        self._calibrated = max(float(calibrated), 1e-12)
        self._hi = max(float(high), calibrated * 1.01)
        self._lo = min(max(float(low), self._hi * 1e-4), calibrated * 0.99)
        self.spin.blockSignals(True)
        self.spin.setRange(self._lo / self._calibrated, self._hi * 10 / self._calibrated)
        self.spin.blockSignals(False)
        self.calibration_label.setText(note)
        self._show_raw()

    def set_threshold(self, threshold: float) -> None:
        """Show the raw ``threshold`` without emitting anything (the station already knows it)."""
        self._debounce.stop()
        for widget in (self.spin, self.slider):
            widget.blockSignals(True)
        self.spin.setValue(threshold / self._calibrated)
        self.slider.setValue(self._to_slider(threshold))
        for widget in (self.spin, self.slider):
            widget.blockSignals(False)
        self._show_raw()

    def set_calibration(self, calibration) -> None:
        """Scale the slider to a model's calibration and describe it under the threshold."""
        scores = list(calibration.good_scores) + list(calibration.bad_scores) + [calibration.threshold]
        note = (f"calibrated {calibration.threshold:.4g} ({calibration.policy}); "
                f"expected FRR {calibration.expected_frr * 100:.1f} % (at most {calibration.frr.high * 100:.1f} %)")
        if calibration.escape is not None:
            note += (f", escape {calibration.escape.rate * 100:.1f} % ({calibration.escape.low * 100:.1f}-"
                     f"{calibration.escape.high * 100:.1f} %)")
        else:
            # A threshold set for false rejects alone says nothing about the defects it lets pass.
            note += "; escape rate unknown (no defective images: Calibrate with known-bad images)"
        self._show_model(True)
        self.set_scale(calibration.threshold, min(scores) * 0.5, max(scores) * 2.0, note)

    def _show_model(self, present: bool) -> None:
        """Threshold controls enabled with a model; without one the box says so."""
        self.spin.setSpecialValueText("" if present else "no model")
        if not present:
            self.spin.blockSignals(True)
            self.spin.setValue(self.spin.minimum())
            self.spin.blockSignals(False)
        for widget in (self.spin, self.slider, self.reset_button):
            widget.setEnabled(present)

    def flush(self) -> None:
        """Emit a pending debounced threshold now."""
        if self._debounce.isActive():
            self._debounce.stop()
            self._emit_threshold()

    # -- internals -------------------------------------------------------------------------

    def _to_slider(self, value: float) -> int:
        value = min(max(value, self._lo), self._hi)
        return round(SLIDER_STEPS * math.log(value / self._lo) / math.log(self._hi / self._lo))

    def _from_slider(self, position: int) -> float:
        return self._lo * (self._hi / self._lo) ** (position / SLIDER_STEPS)

    def _slider_moved(self, position: int) -> None:
        self.spin.blockSignals(True)
        self.spin.setValue(self._from_slider(position) / self._calibrated)
        self.spin.blockSignals(False)
        self._show_raw()
        self._debounce.start()

    def _spin_changed(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(self._to_slider(value * self._calibrated))
        self.slider.blockSignals(False)
        self._show_raw()
        self._debounce.start()

    def _show_raw(self) -> None:
        self.raw_label.setText(f"raw {self.threshold:.4g} (calibrated {self._calibrated:.4g})")

    def _emit_threshold(self) -> None:
        self.threshold_changed.emit(self.threshold)
