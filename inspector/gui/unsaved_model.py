"""Opening another model over a calibration changed in the station: Save, Discard or Cancel.

A recalibration in the station (the calibration view, a known-bad folder, recent parts
confirmed good) makes a model that exists only in memory, and the operator's threshold
lives only in the settings, for the model file it was set on: opening another model
loses either. :class:`UnsavedModelGuard` asks first. *Save* writes the model in use
(with the operator's threshold as its manual calibration, when one is set) to a file
chosen then, and opens the other model once the file is written; every step runs on
the model worker, as queued requests through the station.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from inspector.calibration.policies import calibrate

MODEL_FILTER = "Inspector models (*.safetensors);;All files (*)"


class UnsavedModelGuard(QObject):
    """Asks before a model replaces a calibration that is not in any model file.

    Args:
        station: The :class:`~inspector.workers.station.Station`.
        audit: The :class:`~inspector.gui.audit_trail.AuditTrail` (the reason of the calibration swap).
        window: The parent of the dialogs.
    """

    def __init__(self, station, audit, window: QWidget) -> None:
        super().__init__(window)
        self.station = station
        self.audit = audit
        self.window = window
        self._save_to: str | None = None  # where the model in use goes once its calibration is in
        self._then_open: str | None = None  # the model opened once it is saved
        self._saving = ""
        station.model_changed.connect(self._on_model_changed)
        station.model_saved.connect(self._on_saved)
        station.models.job_failed.connect(self._on_failed)

    def unsaved_change(self) -> str:
        """What opening another model would lose, in words ("" when nothing)."""
        station = self.station
        model = station.model
        if model is None:
            return ""
        if station.operator_threshold is not None:
            relative = station.operator_threshold / max(float(model.threshold), 1e-12)
            return (f"The threshold set in the station ({relative:.3f} x cal., raw "
                    f"{station.operator_threshold:.4g}) is not saved to a model file.")
        if not station.model_path:
            return "The model in use (recalibrated or refitted in the station) is not saved to a file."
        return ""

    def open_model(self, path: str) -> bool:
        """Open ``path``, after Save / Discard / Cancel if that loses an unsaved calibration.

        Returns False when nothing is opened (cancelled) or the opening waits for the save.
        """
        if self._then_open is not None:
            self.station.message.emit(f"still saving the model in use before opening {self._then_open}")
            return False
        lost = self.unsaved_change()
        if not lost:
            self.station.load_model(path)
            return True
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self.window, "Unsaved calibration",
            f"{lost}\n\nOpening {os.path.basename(path)} discards it. Save the model in use first?",
            buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
        if answer == buttons.Discard:
            self.station.load_model(path)
            return True
        if answer != buttons.Save:
            return False
        target = QFileDialog.getSaveFileName(self.window, "Save the model in use",
                                             self.station.model_path or "model.safetensors", MODEL_FILTER)[0]
        if not target:
            return False
        self._then_open = path
        threshold = self.station.operator_threshold
        if threshold is None:
            self._save(target)
        else:  # the operator's threshold becomes the model's manual calibration, then it is saved
            calibration = self.station.model.calibration
            self._save_to = target
            self.audit.next_swap_reason("threshold saved to the model file")
            self.station.apply_calibration(calibrate(calibration.good_scores, calibration.bad_scores,
                                                     policy="manual", threshold=threshold))
        return False

    def _save(self, target: str) -> None:
        self._saving = target
        self.station.save_model(target)

    def _on_model_changed(self, _model, path: str) -> None:
        target, self._save_to = self._save_to, None
        if target is not None and not path:
            self._save(target)
        elif target is not None:  # another model came in meanwhile: open nothing over it
            self._then_open = None

    def _on_saved(self, path: str) -> None:
        if self._then_open is not None and path == self._saving:
            then, self._then_open, self._saving = self._then_open, None, ""
            self.station.load_model(then)

    def _on_failed(self, message: str) -> None:
        if self._then_open is not None and ("cannot save" in message or "cannot apply" in message):
            self.station.message.emit(f"not opening {self._then_open}: the model in use was not saved")
            self._then_open, self._save_to, self._saving = None, None, ""
