"""The model-file worker: loading, saving, recalibrating and preparing the demo, off the GUI thread.

Even reading a model file builds a network (and imports torch), so none of it
runs on the GUI thread. Every model this worker hands out has its content hash
already computed.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

from inspector.core.progress import Progress
from inspector.pipeline.protocol import InspectingModel

if TYPE_CHECKING:
    from inspector.calibration.policies import Calibration

logger = logging.getLogger(__name__)


class ModelWorker(QObject):
    """Model file jobs on their own thread.

    Signals:
        model_loaded(InspectionModel, str): a model and the file it came from.
        model_saved(str, str): path and model hash.
        model_recalibrated(InspectionModel): the same detector with a new calibration.
        demo_ready(InspectionModel, str, str): the demo model, its path and the demo source spec.
        demo_progress(str): what the first-start demo build is doing (about once a second).
        load_failed(str): no model could be loaded (file or demo); a message for the status bar.
        job_failed(str): saving or recalibrating failed; a message for the status bar.
    """

    model_loaded = Signal(object, str)
    model_saved = Signal(str, str)
    model_recalibrated = Signal(object)
    demo_ready = Signal(object, str, str)
    demo_progress = Signal(str)
    load_failed = Signal(str)
    job_failed = Signal(str)

    def __init__(self, trust=None) -> None:
        """Args:
            trust: The :class:`inspector.storage.signing.TrustPolicy` for every load; ``None``
                reads the settings' and environment's policy at each load (so a changed
                ``require_signed_models`` applies to the next model opened).
        """
        super().__init__()
        self._last_report = 0.0
        self._trust = trust

    @Slot(str)
    def load(self, path: str) -> None:
        """Load ``path`` with the default device (CUDA when present).

        A model refused by the trust policy (unsigned where signatures are required,
        or wrongly signed) is a failed load: ``load_failed`` with the reason.
        """
        try:
            model = self._load(path, self._trust)
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

    @Slot()
    def prepare_demo(self) -> None:
        """Build (first start) or find the embedded demo, then load its model."""
        try:
            from inspector.demo import ensure_demo
        except ImportError:
            self.load_failed.emit("no model given and the demo is not available; open a model (O)")
            return
        try:
            path, spec = ensure_demo(Progress(self._report_demo))
            model = self._load(str(path), self._trust)
        except Exception as exc:
            logger.exception("demo preparation failed")
            self.load_failed.emit(f"cannot prepare the demo: {exc}")
            return
        self.demo_ready.emit(model, str(path), str(spec))

    def _report_demo(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if now - self._last_report >= 1.0:
            self._last_report = now
            self.demo_progress.emit(f"preparing the demo: {message} ({done}/{total})")

    @staticmethod
    def _load(path: str, trust=None) -> InspectingModel:
        from inspector.pipeline.model import InspectionModel

        return InspectionModel.load(path, trust=trust)
