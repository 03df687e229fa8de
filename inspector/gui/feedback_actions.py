"""Operator feedback in the window: mark good / mark defect, and refit with what was marked.

Marking sends a :class:`~inspector.workers.model_worker.FeedbackRequest` to the
model worker, which copies the image into the model's feedback folder
(:mod:`inspector.pipeline.feedback`) and records a ``feedback`` audit row. A
refit with feedback is a :class:`~inspector.workers.fit_worker.FitRequest` on the
fit worker (progress and cancel in a dialog); the station swaps the new model in
between frames and keeps the old one for undo.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Sequence

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QProgressDialog, QWidget

from inspector.core.paths import models_dir
from inspector.pipeline.feedback import feedback_folder, mask_picture
from inspector.workers.fit_worker import FitRequest
from inspector.workers.model_worker import FeedbackRequest

LABEL_TEXT = {"good": "marked good", "bad": "marked defect"}


class FeedbackActions(QObject):
    """Marks decisions and refits with the marks (see the module docstring).

    Args:
        station: The :class:`~inspector.workers.station.Station`.
        window: The parent of the dialogs.

    Signals:
        kept(str, str, dict): label, file kept, the feedback folder's counts (from the worker).
    """

    kept = Signal(str, str, dict)
    _keep = Signal(object, object)

    def __init__(self, station, window: QWidget) -> None:
        super().__init__(window)
        self.station = station
        self.window = window
        self.counts = {"good": 0, "bad": 0}
        self.progress: QProgressDialog | None = None
        self._keep.connect(station.models.keep_feedback)
        station.models.feedback_kept.connect(self._on_kept)
        fitter = station.fitter
        fitter.fit_progress.connect(self._on_progress)
        for signal in (fitter.fit_finished, fitter.fit_failed, fitter.fit_cancelled):
            signal.connect(self._close_progress)

    # -- marking -----------------------------------------------------------------------------

    def mark_result(self, result: Any, label: str) -> bool:
        """Mark a live decision (an :class:`InspectionResult`) ``good`` or ``bad``; False if nothing to mark."""
        model = self.station.model
        if result is None or model is None:
            self.station.message.emit("nothing to mark: no decision shown")
            return False
        frame = result.frame
        name = os.path.basename(frame.path) if frame.path else f"frame-{frame.frame_id:06d}"
        reference = {"path": frame.path, "source": frame.source, "frame_id": frame.frame_id, "name": name,
                     "raw_score": float(result.raw_score), "threshold": float(result.threshold)}
        self._send(FeedbackRequest(label, self.station.model_path, result.model_hash or model.model_hash,
                                   source_path=frame.path, image=None if frame.path else frame.image,
                                   old_verdict="NG" if result.anomalous else "OK", reference=reference))
        return True

    def mark_files(self, rows: Sequence[tuple[str, str]], label: str, model_hash: str = "") -> int:
        """Mark image files (``(path, old verdict)`` pairs, e.g. batch rows); returns how many were sent."""
        model = self.station.model
        if model is None:
            self.station.message.emit("nothing to mark: no model")
            return 0
        for path, verdict in rows:
            self._send(FeedbackRequest(label, self.station.model_path, model_hash or model.model_hash,
                                       source_path=path, old_verdict=verdict,
                                       reference={"path": path, "source": "batch review",
                                                  "name": os.path.basename(path)}))
        return len(rows)

    def _send(self, request: FeedbackRequest) -> None:
        self._keep.emit(self.station.store, request)

    def _on_kept(self, label: str, path: str, counts: dict) -> None:
        self.counts = dict(counts)
        self.station.message.emit(f"{os.path.basename(path)} {LABEL_TEXT.get(label, label)} "
                                  f"({counts.get('good', 0)} good, {counts.get('bad', 0)} defect kept for the "
                                  "next refit with feedback)")
        self.kept.emit(label, path, dict(counts))

    # -- refit -------------------------------------------------------------------------------

    def feedback_request(self, reference_dir: str | None = None, save_path: str | None = None,
                         mask: Any = None, reason: str = "refit with feedback") -> FitRequest | None:
        """The fit request of a refit with feedback for the model in use (``None``: no model/folder).

        ``mask`` (a mask picture) replaces the model's own regions (default: keep them).
        """
        model = self.station.model
        if model is None:
            return None
        folder = reference_dir or known_reference_dir(model, self.station.model_path)
        if not folder:
            return None
        detector = model.detector
        return FitRequest(
            reference_dir=str(folder), detector=model.detector_kind, backbone=model.backbone or "lite0",
            image_size=int(detector.preprocessing.image_size),
            save_path=save_path or default_feedback_path(self.station.model_path),
            feedback_folder=str(feedback_folder(self.station.model_path, model.model_hash)),
            mask=mask_picture(model) if mask is None else mask, reason=reason)

    def refit(self, reference_dir: str | None = None, save_path: str | None = None, mask: Any = None,
              reason: str = "refit with feedback") -> FitRequest | None:
        """Start a refit with feedback (and ``mask``, if given); asks for the reference folder when unknown."""
        model = self.station.model
        if model is None:
            self.station.message.emit("no model to refit")
            return None
        if not (reference_dir or known_reference_dir(model, self.station.model_path)):
            reference_dir = QFileDialog.getExistingDirectory(
                self.window, "This model does not record its reference images: choose their folder")
            if not reference_dir:
                return None
        request = self.feedback_request(reference_dir, save_path, mask, reason)
        self._open_progress()
        self.station.message.emit(f"{reason}: fitting on {request.reference_dir} and {request.feedback_folder} ...")
        self.station.fit(request)
        return request

    def _open_progress(self) -> None:
        dialog = QProgressDialog("Refitting with feedback…", "Cancel", 0, 0, self.window)
        dialog.setWindowTitle("Refit with feedback")
        dialog.setWindowModality(Qt.WindowModality.NonModal)
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.canceled.connect(self.station.cancel_fit)
        dialog.show()
        self.progress = dialog

    def _on_progress(self, done: int, total: int, message: str) -> None:
        if self.progress is not None:
            self.progress.setMaximum(max(total, 1))
            self.progress.setValue(min(done, max(total, 1)))
            self.progress.setLabelText(message)

    def _close_progress(self, *_args) -> None:
        dialog, self.progress = self.progress, None
        if dialog is not None:
            dialog.canceled.disconnect(self.station.cancel_fit)
            dialog.close()
            dialog.deleteLater()


def known_reference_dir(model: Any, model_path: str) -> str | None:
    """The model's reference folder: stored in it, or the demo's for a demo model built before it was."""
    stored = model.info.get("reference_dir")
    if stored:
        return str(stored)
    from inspector.core.paths import demo_dir

    demo = demo_dir()
    if model_path and os.path.dirname(os.path.abspath(model_path)) == str(demo):
        return str(demo / "reference")
    return None


def default_feedback_path(model_path: str) -> str:
    """Where a refit with feedback saves its model: the data dir's models folder, named after the old one."""
    stem = os.path.splitext(os.path.basename(model_path))[0] if model_path else "model"
    return str(models_dir() / f"{stem}-feedback-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.safetensors")
