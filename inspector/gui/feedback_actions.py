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
import re
from typing import Any, Sequence

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QProgressDialog, QWidget

from inspector.core.paths import models_dir
from inspector.pipeline.feedback import feedback_counts, feedback_folder, list_feedback, refit_settings
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
        self._home: tuple[Any, str] = (None, "")  # (detector, model file) whose feedback folder is in use
        station.model_changed.connect(self._on_model_changed)
        self._keep.connect(station.models.keep_feedback)
        station.models.feedback_kept.connect(self._on_kept)
        fitter = station.fitter
        fitter.fit_progress.connect(self._on_progress)
        for signal in (fitter.fit_finished, fitter.fit_failed, fitter.fit_cancelled):
            signal.connect(self._close_progress)

    @property
    def home_path(self) -> str:
        """The model file whose feedback folder marks go to.

        The file of the model in use; for an unsaved recalibration of a saved model
        (same detector: a threshold policy applied, a known-bad folder added) the file
        it came from, so that marks made before and after stay in one folder and the
        next refit with feedback sees them all.
        """
        if self.station.model_path:
            return self.station.model_path
        detector, path = self._home
        model = self.station.model
        return path if model is not None and detector is getattr(model, "detector", None) else ""

    def _on_model_changed(self, model: Any, path: str) -> None:
        detector = getattr(model, "detector", None)
        if path or detector is not self._home[0]:
            self._home = (detector, path)

    # -- marking -----------------------------------------------------------------------------

    def mark_result(self, result: Any, label: str) -> bool:
        """Mark a live decision (an :class:`InspectionResult`) ``good`` or ``bad``; False if nothing to mark."""
        if result is None or self.station.model is None:
            self.station.message.emit("nothing to mark: no decision shown")
            return False
        frame = result.frame
        name = os.path.basename(frame.path) if frame.path else f"frame-{frame.frame_id:06d}"
        return self._mark_decision(label, frame.path, frame.image, frame.source, frame.frame_id, name,
                                   result.raw_score, result.threshold, result.anomalous, result.model_hash,
                                   origin="live view")

    def mark_point(self, point: Any, label: str) -> bool:
        """Mark a decision of the score history (a :class:`~inspector.gui.score_history.HistoryPoint`)."""
        if point is None or self.station.model is None:
            self.station.message.emit("nothing to mark: no model")
            return False
        if not point.markable:
            self.station.message.emit(f"{point.name}: the frame's pixels are no longer held; it cannot be marked")
            return False
        return self._mark_decision(label, point.path, point.image, point.source, point.frame_id, point.name,
                                   point.raw_score, point.threshold, point.anomalous, point.model_hash,
                                   origin="score history")

    def _mark_decision(self, label: str, path: str | None, image: Any, source: str, frame_id: int, name: str,
                       raw_score: float, threshold: float, anomalous: bool, model_hash: str,
                       origin: str = "") -> bool:
        reference = {"path": path, "source": source, "frame_id": frame_id, "name": name,
                     "raw_score": float(raw_score), "threshold": float(threshold)}
        if origin:
            reference["marked_from"] = origin
        self._send(FeedbackRequest(label, self.home_path, model_hash or self.station.model.model_hash,
                                   source_path=path, image=None if path else image,
                                   old_verdict="NG" if anomalous else "OK", reference=reference))
        return True

    def mark_files(self, rows: Sequence[tuple[str, str]], label: str, model_hash: str = "") -> int:
        """Mark image files (``(path, old verdict)`` pairs, e.g. batch rows); returns how many were sent."""
        model = self.station.model
        if model is None:
            self.station.message.emit("nothing to mark: no model")
            return 0
        for path, verdict in rows:
            self._send(FeedbackRequest(label, self.home_path, model_hash or model.model_hash,
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

    def marked_counts(self) -> dict[str, int]:
        """``{"good": n, "bad": m}``: the operator's marks a refit of the model in use would include."""
        model = self.station.model
        if model is None:
            return {"good": 0, "bad": 0}
        return feedback_counts(list_feedback(feedback_folder(self.home_path, model.model_hash)))

    # -- refit -------------------------------------------------------------------------------

    def feedback_request(self, reference_dir: str | None = None, save_path: str | None = None,
                         mask: Any = None, reason: str = "refit with feedback") -> FitRequest | None:
        """The fit request of a refit with feedback for the model in use (``None``: no model/folder).

        The new model is fitted as the one in use was (:func:`~inspector.pipeline.feedback.refit_settings`):
        its detector and options, backbone, input size, folds, policy and regions. ``mask``
        (a mask picture) replaces the model's own regions (default: keep them).
        """
        model = self.station.model
        if model is None:
            return None
        folder = reference_dir or known_reference_dir(model, self.home_path)
        if not folder:
            return None
        settings = refit_settings(model)
        return FitRequest(
            reference_dir=str(folder), detector=settings.detector, backbone=settings.backbone,
            weights=settings.weights, folds=settings.folds, image_size=settings.image_size,
            save_path=save_path or default_feedback_path(self.home_path,
                                                         "regions" if "region" in reason else "feedback"),
            feedback_folder=str(feedback_folder(self.home_path, model.model_hash)),
            mask=settings.mask if mask is None else mask, reason=reason, options=dict(settings.options),
            policy=settings.policy, target=settings.target)

    def refit(self, reference_dir: str | None = None, save_path: str | None = None, mask: Any = None,
              reason: str = "refit with feedback") -> FitRequest | None:
        """Start a refit with feedback (and ``mask``, if given); asks for the reference folder when unknown."""
        model = self.station.model
        if model is None:
            self.station.message.emit("no model to refit")
            return None
        if not (reference_dir or known_reference_dir(model, self.home_path)):
            reference_dir = QFileDialog.getExistingDirectory(
                self.window, "This model does not record its reference images: choose their folder")
            if not reference_dir:
                return None
        try:
            request = self.feedback_request(reference_dir, save_path, mask, reason)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:  # e.g. an ONNX export: no detector to refit
            self.station.message.emit(f"this model cannot be refitted here ({exc}): refit it from its .safetensors file")
            return None
        self._open_progress(reason)
        self.station.message.emit(f"{reason}: fitting on {request.reference_dir} and {request.feedback_folder} ...")
        self.station.fit(request)
        return request

    def _open_progress(self, reason: str = "refit with feedback") -> None:
        title = reason[:1].upper() + reason[1:]
        dialog = QProgressDialog(f"{title}…", "Cancel", 0, 0, self.window)
        dialog.setWindowTitle(title)
        dialog.setWindowModality(Qt.WindowModality.NonModal)
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.canceled.connect(self.station.cancel_fit)
        dialog.show()
        # In the window's top-right corner, not over the middle of the live view: the line goes on.
        frame = self.window.frameGeometry()
        dialog.move(frame.right() - dialog.frameGeometry().width() - 24, frame.top() + 96)
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


def default_feedback_path(model_path: str, tag: str = "feedback") -> str:
    """Where a refit with feedback saves its model: the data dir's models folder, named after the old one.

    ``tag`` says what the refit was for (``feedback``, ``regions``). A name already
    refitted (``part-feedback-20250101-120000``) is not extended again.
    """
    stem = os.path.splitext(os.path.basename(model_path))[0] if model_path else "model"
    stem = re.sub(r"-(feedback|regions)-\d{8}-\d{6}$", "", stem)
    return str(models_dir() / f"{stem}-{tag}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.safetensors")
