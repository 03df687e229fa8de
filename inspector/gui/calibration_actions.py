"""Calibration work the calibration view asks for: a known-bad folder, recalibration on recent parts.

*Add a known-bad folder...* scores the folder's images with the model in use on
the model worker (``score_folder``); their scores join the known-bad ones
(:func:`~inspector.pipeline.feedback.with_known_bad`) and the station swaps in
the recalibrated model (undoable, a ``calibration`` row in the audit trail).

*Recalibrate on the last N frames...* answers the drift watch: once the
operator confirms that the recent parts were good, their raw scores (frames
marked defect left out) become the held-out good scores
(:func:`~inspector.pipeline.feedback.recalibrated_on_good`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from inspector.core.policy import Threshold
from inspector.pipeline.feedback import recalibrated_on_good, with_known_bad


class CalibrationActions(QObject):
    """Runs the calibration view's requests (see the module docstring).

    Args:
        station: The :class:`~inspector.workers.station.Station`.
        view: The :class:`~inspector.gui.calibration_view.CalibrationView`.
        history: The :class:`~inspector.gui.score_history.ScoreHistory` (recent scores and marks).
        audit: The :class:`~inspector.gui.audit_trail.AuditTrail` (the reason of the next swap).
        window: The parent of the dialogs.
    """

    _score = Signal(object, str)

    def __init__(self, station, view, history, audit, window: QWidget) -> None:
        super().__init__(window)
        self.station = station
        self.view = view
        self.history = history
        self.audit = audit
        self.window = window
        self.pending: str | None = None
        self._announce = ""
        station.model_changed.connect(self._on_model_changed)
        self._score.connect(station.models.score_folder)
        station.models.folder_scored.connect(self._on_scored)
        station.models.job_failed.connect(self._on_failed)
        view.bad_folder_requested.connect(self.add_bad_folder)
        view.recalibrate_recent_requested.connect(self.recalibrate_on_recent)

    # -- known-bad folder ----------------------------------------------------------------------

    def add_bad_folder(self, folder: str | None = None) -> bool:
        """Score ``folder`` (asked for when ``None``) as known-bad images; False if nothing was started."""
        model = self.station.model
        if model is None:
            self.station.message.emit("no model to calibrate")
            return False
        if self.pending:
            self.station.message.emit(f"still scoring {self.pending}")
            return False
        if not folder:
            near = os.path.dirname(str(getattr(model, "info", {}).get("reference_dir") or ""))
            folder = QFileDialog.getExistingDirectory(self.window, "Folder of known-bad (defective) parts", near)
            if not folder:
                return False
        self.pending = str(folder)
        self.view.set_busy(f"scoring the known-bad images in {folder} …")
        self.station.message.emit(f"scoring the known-bad images in {folder} …")
        self._score.emit(model, str(folder))
        return True

    def _on_scored(self, model: Any, folder: str, scores: np.ndarray, unreadable: int) -> None:
        if folder != self.pending:
            return
        self.pending = None
        self.view.set_busy("")
        if model is not self.station.model:
            self.station.message.emit(f"{folder}: the model changed while its images were scored; add it again")
            return
        try:
            calibration = with_known_bad(model.calibration, scores)
        except ValueError as exc:
            self.station.message.emit(f"cannot use {folder} as known-bad images: {exc}")
            return
        passed = int(np.sum(~Threshold(model.threshold).decide_many(scores)))
        skipped = f", {unreadable} unreadable files skipped" if unreadable else ""
        self.audit.next_swap_reason(f"known-bad folder {folder}: {len(scores)} images")
        # Said once the recalibrated model is in use (after the station's own "model recalibrated").
        self._announce = (f"{len(scores)} known-bad images from {os.path.basename(folder.rstrip('/'))}: "
                          f"{passed} would pass the model's threshold{skipped}; Ctrl+Z undoes")
        self.station.apply_calibration(calibration)

    def _on_model_changed(self, *_args) -> None:
        if self._announce:
            text, self._announce = self._announce, ""
            QTimer.singleShot(0, lambda: self.station.message.emit(text))

    def _on_failed(self, message: str) -> None:
        if self.pending and self.pending in message:
            self.pending = None
            self.view.set_busy("")

    # -- recent parts confirmed good ---------------------------------------------------------------

    def recent_good_scores(self, count: int) -> tuple[np.ndarray, int]:
        """The raw scores of the last ``count`` frames less those marked defect, and how many were left out."""
        scores = self.history.scores
        start = max(0, len(scores) - int(count))
        marks = self.history.marks()
        keep = [i for i in range(start, len(scores)) if marks.get(i) != "bad"]
        return scores[keep], (len(scores) - start) - len(keep)

    def recalibrate_on_recent(self, count: int, confirm: bool = True) -> bool:
        """Recalibrate on the last ``count`` frames after the operator confirms they were good parts."""
        model = self.station.model
        if model is None:
            self.station.message.emit("no model to recalibrate")
            return False
        scores, left_out = self.recent_good_scores(count)
        if len(scores) < 2:
            self.station.message.emit("too few recent frames of this model to recalibrate on")
            return False
        rejected = int(np.sum(Threshold(self.station.threshold).decide_many(scores)))
        if confirm:
            dropped = f" ({left_out} marked defect are left out)" if left_out else ""
            answer = QMessageBox.question(
                self.window, "Recalibrate on recent parts",
                f"Were the last {len(scores)} parts{dropped} all good parts?\n\n"
                f"{rejected} of them were rejected at the current threshold. Their scores will replace the "
                "held-out good scores of the model in use, and the threshold is chosen again by its policy "
                f"({model.calibration.policy}). Undo with Ctrl+Z.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                return False
        try:
            calibration = recalibrated_on_good(model.calibration, scores,
                                               frr_target=self.view.frr_target.value() / 100)
        except ValueError as exc:
            self.station.message.emit(f"cannot recalibrate: {exc}")
            return False
        self.audit.next_swap_reason(f"recalibrated on the last {len(scores)} frames confirmed good"
                                    + (f" ({left_out} marked defect left out)" if left_out else ""))
        self.station.apply_calibration(calibration)
        return True
