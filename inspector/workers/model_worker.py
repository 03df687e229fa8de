"""The model-file worker: loading, saving, recalibrating and preparing the demo, off the GUI thread.

Even reading a model file builds a network (and imports torch), so none of it
runs on the GUI thread. Every model this worker hands out has its content hash
already computed.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from PySide6.QtCore import QObject, Signal, Slot

from inspector.core.progress import Cancelled, Progress
from inspector.pipeline.protocol import InspectingModel

if TYPE_CHECKING:
    from inspector.calibration.policies import Calibration

logger = logging.getLogger(__name__)

AUDIT_LIMIT = 500
"""How many audit rows the station's log view loads (newest first)."""


@dataclass(frozen=True, eq=False)
class FeedbackRequest:
    """An operator's correction of one decision, to keep with the model and record in the audit trail.

    Attributes:
        label: ``"good"`` (a false reject marked good) or ``"bad"`` (an escape marked defect).
        model_path: The model's file ("" for an unsaved model: its folder is in the data dir).
        model_hash: The model that made the decision.
        source_path: The image file, when the frame came from one (it is copied as is).
        image: The frame's pixels (written as PNG when there is no file).
        old_verdict: What the model said: ``"OK"`` or ``"NG"``.
        reference: The decision: path, source and frame number (for the audit row).
    """

    label: str
    model_path: str
    model_hash: str
    source_path: str | None = None
    image: np.ndarray | None = None
    old_verdict: str = ""
    reference: dict = field(default_factory=dict)


class ModelWorker(QObject):
    """Model file jobs on their own thread.

    Signals:
        model_loaded(InspectionModel, str): a model and the file it came from.
        model_saved(str, str): path and model hash.
        model_recalibrated(InspectionModel): the same detector with a new calibration.
        demo_ready(InspectionModel, str, str): the demo model, its path and the demo source spec.
        demo_progress(str): what the first-start demo build is doing (about once a second).
        demo_step(int, int, str): done, total and what the demo build is doing (a few times a second),
            for a progress dialog; only while the demo is being built.
        demo_cancelled(): :meth:`cancel_demo` stopped the demo build (no model loaded).
        load_failed(str): no model could be loaded (file or demo); a message for the status bar.
        job_failed(str): saving or recalibrating failed; a message for the status bar.
        audit_recorded(int): an audit row was written (its id).
        audit_loaded(list): audit rows (dicts, newest first) for the log view.
        audit_failed(str): the audit trail could not be written or read (the entry is dropped).
        feedback_kept(str, str, dict): label, the file kept and the folder's counts.
        folder_scored(object, str, object, int): the model, a folder, the raw scores of its images
            (``np.ndarray``) and how many files could not be read (e.g. a known-bad folder).
    """

    model_loaded = Signal(object, str)
    model_saved = Signal(str, str)
    model_recalibrated = Signal(object)
    demo_ready = Signal(object, str, str)
    demo_progress = Signal(str)
    demo_step = Signal(int, int, str)
    demo_cancelled = Signal()
    load_failed = Signal(str)
    job_failed = Signal(str)
    audit_recorded = Signal(int)
    audit_loaded = Signal(list)
    audit_failed = Signal(str)
    feedback_kept = Signal(str, str, dict)
    folder_scored = Signal(object, str, object, int)

    def __init__(self, trust=None, runtime: str = "auto") -> None:
        """Args:
            trust: The :class:`inspector.storage.signing.TrustPolicy` for every load; ``None``
                reads the settings' and environment's policy at each load (so a changed
                ``require_signed_models`` applies to the next model opened).
            runtime: What decides frames of a ``.safetensors`` model: ``auto`` (its exported
                graph on the fastest engine that passes parity, else torch;
                :func:`inspector.export.accelerated.accelerate`), ``torch``, ``onnx`` or ``openvino``.
        """
        super().__init__()
        self.runtime = runtime
        self._last_report = 0.0
        self._last_step = 0.0
        self._trust = trust
        self._demo: Progress | None = None
        self._demo_cancel = threading.Event()

    def cancel_demo(self) -> None:
        """Stop the demo build at its next step (call from any thread)."""
        self._demo_cancel.set()
        progress = self._demo
        if progress is not None:
            progress.cancel()

    @Slot(str)
    def load(self, path: str) -> None:
        """Load ``path`` with the default device (CUDA when present); a ``.onnx`` export runs on onnxruntime.

        A model refused by the trust policy (unsigned where signatures are required,
        or wrongly signed) is a failed load: ``load_failed`` with the reason.
        """
        try:
            model = self._load(path, self._trust, self.runtime)
        except Exception as exc:
            logger.warning("cannot load model %s: %s", path, exc)
            self.load_failed.emit(f"cannot load model: {exc}")
            return
        self.model_loaded.emit(model, path)

    @Slot(object, str)
    def save(self, model: InspectingModel, path: str) -> None:
        """Save ``model`` to ``path``."""
        try:
            model_hash = model.save(path)
        except Exception as exc:
            logger.warning("cannot save model to %s: %s", path, exc)
            self.job_failed.emit(f"cannot save model: {exc}")
            return
        self.model_saved.emit(path, str(model_hash or model.model_hash))

    @Slot(object, object)
    def recalibrate(self, model: InspectingModel, calibration: Calibration) -> None:
        """A new model sharing ``model``'s detector, deciding with ``calibration``."""
        try:
            new = model.with_calibration(calibration)
        except Exception as exc:
            self.job_failed.emit(f"cannot apply the calibration: {exc}")
            return
        self.model_recalibrated.emit(new)

    @Slot(object, str)
    def score_folder(self, model: InspectingModel, folder: str) -> None:
        """Raw scores of every image in ``folder`` under ``model`` (no maps): ``folder_scored``."""
        from inspector.core.imageio import list_images, read_images
        from inspector.core.records import Frame

        try:
            paths = list_images([folder]).images
            if not paths:
                raise ValueError(f"no images in {folder}")
            loaded = read_images(paths)
            if not loaded.images:
                raise ValueError(f"none of the {len(paths)} files in {folder} could be read")
            scores = []
            for start in range(0, len(loaded.images), 16):
                frames = [Frame(image, f"folder:{folder}", start + i, str(path)) for i, (image, path)
                          in enumerate(zip(loaded.images[start:start + 16], loaded.paths[start:start + 16]))]
                scores.extend(result.raw_score for result in model.inspect(frames))
        except Exception as exc:
            logger.warning("cannot score %s: %s", folder, exc)
            self.job_failed.emit(f"cannot score {folder}: {exc}")
            return
        self.folder_scored.emit(model, str(folder), np.asarray(scores, dtype=np.float64), len(loaded.errors))

    @Slot()
    def prepare_demo(self) -> None:
        """Build (first start) or find the embedded demo, then load its model."""
        try:
            from inspector.demo import ensure_demo
        except ImportError:
            self.load_failed.emit("no model given and the demo is not available; open a model (O)")
            return
        progress = self._demo = Progress(self._report_demo)
        if self._demo_cancel.is_set():
            progress.cancel()
        try:
            path, spec = ensure_demo(progress)
            model = self._load(str(path), self._trust, self.runtime)
        except Cancelled:
            self.demo_cancelled.emit()
            return
        except Exception as exc:
            logger.exception("demo preparation failed")
            self.load_failed.emit(f"cannot prepare the demo: {exc}")
            return
        finally:
            self._demo = None
            self._demo_cancel.clear()
        self.demo_ready.emit(model, str(path), str(spec))

    @Slot()
    def shutdown(self) -> None:
        """Called (blocking) by the thread host before the thread stops.

        It is queued behind the audit rows and feedback still waiting, so those are
        written before the station closes (e.g. the threshold settled just before quitting).
        """
        self.cancel_demo()

    @Slot(object, object)
    def record_audit(self, store: Callable[[], Any] | None, entry: dict) -> None:
        """Write one audit row (``entry``: the keyword arguments of ``ResultStore.record_audit``).

        Without a database, or when it cannot be written, the entry is logged and
        dropped (``audit_failed``): the audit trail is not journalled like decisions.
        """
        if store is None:
            logger.info("no results database: audit entry not recorded: %s", entry)
            return
        try:
            row = store().record_audit(**entry)
        except Exception as exc:
            logger.warning("audit entry dropped (%s): %s", exc, entry)
            self.audit_failed.emit(f"audit entry not recorded ({exc}): {entry.get('action')}")
            return
        self.audit_recorded.emit(int(row))

    @Slot(object, int)
    def load_audit(self, store: Callable[[], Any] | None, limit: int = AUDIT_LIMIT) -> None:
        """Read the newest ``limit`` audit rows; ``audit_loaded`` answers."""
        if store is None:
            self.audit_loaded.emit([])
            return
        try:
            rows = store().query_audit(limit=limit)
        except Exception as exc:
            self.audit_failed.emit(f"cannot read the audit trail: {exc}")
            return
        self.audit_loaded.emit(list(rows))

    @Slot(object, object)
    def keep_feedback(self, store: Callable[[], Any] | None, request: FeedbackRequest) -> None:
        """Copy the image into the model's feedback folder and record a ``feedback`` audit row."""
        from inspector.pipeline.feedback import add_feedback, feedback_counts, feedback_folder, list_feedback

        try:
            folder = feedback_folder(request.model_path, request.model_hash)
            kept = add_feedback(folder, request.label, source_path=request.source_path, image=request.image,
                                name=str(request.reference.get("name", "")))
            counts = feedback_counts(list_feedback(folder))
        except Exception as exc:
            logger.warning("cannot keep feedback: %s", exc)
            self.job_failed.emit(f"cannot keep the marked image: {exc}")
            return
        detail = dict(request.reference, kept=str(kept), folder=str(folder))
        self.record_audit(store, {"action": "feedback", "old": request.old_verdict, "new": request.label,
                                  "old_model_hash": request.model_hash, "new_model_hash": request.model_hash,
                                  "detail": detail})
        self.feedback_kept.emit(request.label, str(kept), counts)

    def _report_demo(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if now - self._last_step >= 0.2 or done >= total:
            self._last_step = now
            self.demo_step.emit(int(done), int(total), str(message))
        if now - self._last_report >= 1.0:
            self._last_report = now
            self.demo_progress.emit(f"preparing the demo: {message} ({done}/{total})")

    @staticmethod
    def _load(path: str, trust=None, runtime: str = "auto") -> InspectingModel:
        """A ``.onnx`` export on onnxruntime (fast map only); any other file as the torch model,
        deciding on its exported graph when ``runtime`` allows and parity holds (the reason is logged)."""
        from inspector.export.onnx_runtime import is_onnx_path

        if is_onnx_path(path):
            from inspector.export.onnx_runtime import load_onnx_model

            return load_onnx_model(path, trust=trust)
        from inspector.export.accelerated import accelerate
        from inspector.pipeline.model import InspectionModel
        from inspector.storage.signing import default_trust_policy

        trust = trust or default_trust_policy()
        model, choice = accelerate(InspectionModel.load(path, trust=trust), runtime=runtime, trust=trust)
        logger.info("%s: %s", path, choice.line())
        return model
