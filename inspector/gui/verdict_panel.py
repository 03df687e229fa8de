"""The verdict panel: a large OK / NG, the score against the threshold, counts and the last reject."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from inspector.core.records import InspectionResult
from inspector.gui.theme import IDLE_COLOR, MUTED, NG_COLOR, OK_COLOR, to_pixmap


class VerdictPanel(QWidget):
    """Shows the decision recorded for the newest frame, exactly as the results database has it.

    Signals:
        mark_requested(str): the operator corrects the decision shown: ``"good"`` or ``"bad"``.
    """

    mark_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._unit = 1.0
        self._model_hash: str | None = None  # the model in use: a record of another one is not shown
        self._reject_pixmap: QPixmap | None = None  # the last reject at full size, scaled to the label
        self.verdict_label = QLabel("—")
        self.verdict_label.setObjectName("verdict")
        self.verdict_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.verdict_label.setMinimumHeight(84)
        self.score_label = QLabel("score —")
        self.score_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.score_label.setStyleSheet("font-size: 20pt; font-weight: 600;")
        self.score_label.setWordWrap(True)
        self.detail_label = QLabel("")
        self.detail_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail_label.setStyleSheet(f"color: {MUTED};")
        self.detail_label.setWordWrap(True)
        # A long file name wraps or is cut here; it must not set the column's minimum width.
        self.detail_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        counts = QFrame()
        grid = QGridLayout(counts)
        grid.setContentsMargins(0, 0, 0, 0)
        self.ok_count = self._count_label(OK_COLOR)
        self.ng_count = self._count_label(NG_COLOR)
        grid.addWidget(self._caption("OK"), 0, 0)
        grid.addWidget(self._caption("NG"), 0, 1)
        grid.addWidget(self.ok_count, 1, 0)
        grid.addWidget(self.ng_count, 1, 1)

        self.last_ng = QLabel("no reject yet")
        self.last_ng.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.last_ng.setMinimumHeight(40)
        self.last_ng.setStyleSheet("border: 1px solid #39414b; border-radius: 4px; color: #69727d;")
        # Ignored: neither the pixmap shown nor a long caption may grow the column (horizontal
        # clipping of the buttons, a vertical scroll bar at 1280x800); the picture is scaled to fit.
        self.last_ng.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.last_ng.installEventFilter(self)  # rescaled when it is resized or moved to the history strip
        self.last_ng_caption = QLabel("Last reject")
        self.last_ng_caption.setStyleSheet(f"color: {MUTED};")
        self.last_ng_caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.verdict_label)
        layout.addWidget(self.score_label)
        layout.addWidget(self.detail_label)
        layout.addWidget(counts)
        self.mark_good_button = QPushButton("Mark good (G)")
        self.mark_good_button.setToolTip("A false reject: keep this image as good for the next refit with feedback")
        self.mark_defect_button = QPushButton("Mark defect (D)")
        self.mark_defect_button.setToolTip("An escape: keep this image as a known defect for the next refit")
        self.mark_good_button.clicked.connect(lambda: self.mark_requested.emit("good"))
        self.mark_defect_button.clicked.connect(lambda: self.mark_requested.emit("bad"))
        # Beside the counts, not under them: one row less, every control visible at 1280x800.
        grid.addWidget(self.mark_good_button, 0, 2)
        grid.addWidget(self.mark_defect_button, 1, 2)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        # The last reject is its own widget: the window places it below the operator's controls,
        # or at the end of the score-history strip on a short window.
        self.reject_view = QWidget()
        reject_layout = QVBoxLayout(self.reject_view)
        reject_layout.setContentsMargins(0, 0, 0, 0)
        reject_layout.addWidget(self.last_ng_caption)
        reject_layout.addWidget(self.last_ng, 1)
        layout.addWidget(self.reject_view, 1)
        self.set_verdict(None)

    @staticmethod
    def _caption(text: str) -> QLabel:
        label = QLabel(text)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setStyleSheet(f"color: {MUTED};")
        return label

    @staticmethod
    def _count_label(color: str) -> QLabel:
        label = QLabel("0")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setStyleSheet(f"font-size: 18pt; font-weight: 700; color: {color};")
        return label

    @property
    def verdict(self) -> str:
        """The verdict shown: ``OK``, ``NG`` or ``—``."""
        return self.verdict_label.text()

    def set_verdict(self, result: InspectionResult | None, detail: str = "",
                    current_threshold: float | None = None) -> None:
        """Show the decision recorded in ``result`` (``None``: nothing to show).

        The verdict, the score and the threshold are the record's own: the panel
        never re-decides. When the station decides later frames at another
        threshold (``current_threshold``), a line says so. A record decided by a model other
        than the one in use (:meth:`set_model`) shows no verdict: no frame of the model in use yet.
        """
        if result is not None and not self.decided_by_model_in_use(result):
            # Decided by the model that was in use before (a refit, an undo): not a verdict of this one.
            result = None
            detail = "\n".join(["no frame decided by the model in use yet"] + ([detail] if detail else []))
        for button in (self.mark_good_button, self.mark_defect_button):
            button.setEnabled(result is not None)
        if result is None:
            text, color, score = "—", IDLE_COLOR, "score —"
        else:
            text, color = ("NG", NG_COLOR) if result.anomalous else ("OK", OK_COLOR)
            score = f"score {self.relative(result.raw_score):.3f}"
            lines = [f"raw {result.raw_score:.4g} / threshold {result.threshold:.4g} raw"]
            if result.threshold != self._unit:
                # In the detail lines, not beside the 20 pt score: that widened the whole column.
                lines.insert(0, f"decided at threshold {self.relative(result.threshold):.3f}")
            if current_threshold is not None and float(current_threshold) != result.threshold:
                lines.append(f"next frames at threshold {self.relative(float(current_threshold)):.3f}")
            detail = "\n".join(lines + ([detail] if detail else []))
        if text != self.verdict_label.text() or not self.verdict_label.styleSheet():
            # Restyling re-polishes the widget: only when the verdict flips, not on every frame.
            self.verdict_label.setText(text)
            self.verdict_label.setStyleSheet(
                f"background: {color}; color: white; border-radius: 10px; font-size: 52pt; font-weight: 800;"
            )
        self.score_label.setText(score)
        self.detail_label.setText(detail)

    def set_model(self, model_hash: str | None) -> None:
        """The model in use: records decided by another model are no longer shown as the verdict."""
        self._model_hash = model_hash or None

    def decided_by_model_in_use(self, result) -> bool:
        """Whether ``result`` was decided by the model in use (a frame shown from before a swap was not)."""
        return result is not None and (self._model_hash is None or result.model_hash == self._model_hash)

    def set_unit(self, calibrated: float) -> None:
        """Show scores relative to ``calibrated`` (the model's raw calibrated threshold; 1.0 = it)."""
        self._unit = max(float(calibrated), 1e-12)

    def relative(self, raw: float) -> float:
        """A raw score or threshold in the operator's unit (1.0 = calibrated threshold)."""
        return float(raw) / self._unit

    def set_counts(self, ok: int, ng: int) -> None:
        """Show the session's OK and NG counts."""
        self.ok_count.setText(str(ok))
        self.ng_count.setText(str(ng))

    def set_last_reject(self, overlay: np.ndarray | None, caption: str = "") -> None:
        """Show the newest NG frame with its overlay (``None`` clears it)."""
        if overlay is None:
            self._reject_pixmap = None
            self.last_ng.clear()
            self.last_ng.setText("no reject yet")
            self.last_ng_caption.setText("Last reject")
            return
        self._reject_pixmap = to_pixmap(overlay)
        self._scale_reject()
        self.last_ng_caption.setText(f"Last reject  {caption}")

    def _scale_reject(self) -> None:
        if self._reject_pixmap is None:
            return
        size = self.last_ng.size()
        self.last_ng.setPixmap(self._reject_pixmap.scaled(max(size.width() - 4, 64), max(size.height() - 4, 64),
                                                          Qt.AspectRatioMode.KeepAspectRatio,
                                                          Qt.TransformationMode.SmoothTransformation))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        """The last-reject label was resized: scale the picture to its new size."""
        if watched is self.last_ng and event.type() == QEvent.Type.Resize:
            self._scale_reject()
        return False
