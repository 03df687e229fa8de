"""The station: owns the worker threads and the current model, and wires them together.

It lives on the GUI thread and does no work itself: every request becomes a
queued signal to a worker, every answer comes back as a queued signal. The GUI
talks to the station only.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QObject, Signal

from inspector.pipeline.protocol import InspectingModel
from inspector.workers.batch_worker import BatchWorker
from inspector.workers.decision_recorder import DecisionRecorder
from inspector.workers.fit_worker import FitRequest, FitWorker
from inspector.workers.inspection_worker import InspectionWorker
from inspector.workers.model_worker import ModelWorker
from inspector.workers.segmentation_worker import SegmentationWorker
from inspector.workers.store_holder import StoreHolder
from inspector.workers.thread_host import WorkerThread

if TYPE_CHECKING:
    from inspector.calibration.policies import Calibration

logger = logging.getLogger(__name__)

MAX_UNDO = 5
FOLLOW_UP_NICE = 15
"""Nice increment of the segmentation thread (the other workers: 5): detection comes first."""


class Station(QObject):
    """The inspection station behind the window.

    Args:
        store: The shared results database holder (``None``: nothing recorded).
        source_factory: Builds a FrameSource from a spec (default ``parse_source_spec``).
        segmentation_mode: Initial segmentation mode.
        parent: Qt parent.
        runtime: What decides the frames of a ``.safetensors`` model (``auto``: its exported
            graph when that passes parity; see :class:`~inspector.workers.model_worker.ModelWorker`).

    Attributes:
        recorder: The :class:`~inspector.workers.decision_recorder.DecisionRecorder` the inspection
            worker records through (``None`` without a store); read its ``state`` only once the
            workers have stopped (``--quit-after`` does, for its exit code).
        recipe: The name of the recipe decisions are made under (``None``: none); setting it
            sets the recorder's, so every later row and journal line carries it.

    Signals:
        model_changed(InspectionModel, str): the model in use and its file ("" if unsaved).
        undo_available(bool): whether :meth:`undo_model` has something to go back to.
        threshold_changed(float): the raw threshold verdicts are decided at.
        message(str): a line for the status bar and log.
        demo_ready(str): the demo's source spec (after :meth:`prepare_demo`).
    """

    model_changed = Signal(object, str)
    undo_available = Signal(bool)
    threshold_changed = Signal(float)
    message = Signal(str)
    demo_ready = Signal(str)
    model_saved = Signal(str)
    model_load_failed = Signal(str)

    # requests to the workers (queued: the receivers live on other threads)
    _open_source = Signal(str)
    _start = Signal()
    _pause = Signal()
    _step = Signal()
    _stop = Signal()
    _set_model = Signal(object)
    _set_threshold = Signal(object)
    _set_frame_limit = Signal(object)
    _load = Signal(str)
    _save = Signal(object, str)
    _recalibrate = Signal(object, object)
    _prepare_demo = Signal()
    _fit = Signal(object)
    _run_batch = Signal(str)
    _detail = Signal(str)
    _export_csv = Signal(str, float)
    _export_html = Signal(str, float)

    def __init__(
        self,
        store: StoreHolder | None = None,
        source_factory: Callable[[str], Any] | None = None,
        segmentation_mode: str = "fast",
        parent: QObject | None = None,
        runtime: str = "auto",
    ) -> None:
        super().__init__(parent)
        from inspector.core.opencv_threads import limit_opencv_threads

        limit_opencv_threads()  # OpenCV's pool would wait actively on the cores inspection needs
        self.store = store
        self.model: InspectingModel | None = None
        self.model_path = ""
        self.operator_threshold: float | None = None
        self._undo: list[tuple[InspectingModel, str]] = []
        self.segmentation = SegmentationWorker(mode=segmentation_mode, store_factory=store)
        # Decisions go to the database, or to its journal while it cannot be written.
        self.recorder = DecisionRecorder(store) if store is not None else None
        self.inspection = InspectionWorker(source_factory, store, on_result=self.segmentation.submit,
                                          map_plan=self.segmentation.plan, recorder=self.recorder)
        self.models = ModelWorker(runtime=runtime)
        self.fitter = FitWorker(runtime=runtime)
        self.batch = BatchWorker(store)
        self._hosts = [
            WorkerThread("inspection", self.inspection),
            # Follow-up maps (gradient descent: ~0.8 s a frame on a CPU) must not slow the detection down.
            WorkerThread("segmentation", self.segmentation, nice=FOLLOW_UP_NICE),
            WorkerThread("model files", self.models),
            WorkerThread("fit", self.fitter),
            WorkerThread("batch", self.batch),
        ]
        self._wire()

    @property
    def recipe(self) -> str | None:
        """The recipe name stored with every decision (``None``: no recipe)."""
        return self.recorder.recipe if self.recorder is not None else self._recipe

    @recipe.setter
    def recipe(self, name: str | None) -> None:
        self._recipe = name
        if self.recorder is not None:
            self.recorder.recipe = name

    _recipe: str | None = None

    def _wire(self) -> None:
        w = self.inspection
        self._open_source.connect(w.open_source)
        self._start.connect(w.start)
        self._pause.connect(w.pause)
        self._step.connect(w.step)
        self._stop.connect(w.stop)
        for receiver in (w, self.segmentation, self.batch):
            self._set_model.connect(receiver.set_model)
        self._set_threshold.connect(w.set_threshold)
        self._set_frame_limit.connect(w.set_frame_limit)
        self._load.connect(self.models.load)
        self._save.connect(self.models.save)
        self._recalibrate.connect(self.models.recalibrate)
        self._prepare_demo.connect(self.models.prepare_demo)
        self._fit.connect(self.fitter.fit)
        self._run_batch.connect(self.batch.run)
        self._detail.connect(self.batch.request_detail)
        self._export_csv.connect(self.batch.export_csv)
        self._export_html.connect(self.batch.export_html)
        self.models.model_loaded.connect(self._on_loaded)
        self.models.model_recalibrated.connect(self._on_recalibrated)
        self.models.model_saved.connect(self._on_saved)
        self.models.demo_ready.connect(self._on_demo)
        self.models.load_failed.connect(self.model_load_failed)
        self.models.load_failed.connect(self.message)
        self.models.job_failed.connect(self.message)
        self.models.demo_progress.connect(self.message)
        self.fitter.fit_finished.connect(self._on_fitted)
        for signal in (w.error_occurred, w.read_failed, self.segmentation.error_occurred,
                       self.batch.error_occurred, self.fitter.fit_failed):
            signal.connect(self.message)

    # -- model ---------------------------------------------------------------------------

    def load_model(self, path: str) -> None:
        """Load a model file on the model worker; ``model_changed`` follows."""
        self.message.emit(f"loading model {path} ...")
        self._load.emit(str(path))

    def save_model(self, path: str) -> None:
        """Save the current model to ``path``."""
        if self.model is not None:
            self._save.emit(self.model, str(path))

    def prepare_demo(self) -> None:
        """Build or find the embedded demo and load its model."""
        self.message.emit("preparing the demo (the first start fits a model; this takes a moment) ...")
        self._prepare_demo.emit()

    def set_model(self, model: InspectingModel, path: str = "", reason: str = "loaded", undoable: bool = True) -> None:
        """Swap ``model`` in between frames; the previous one is kept for :meth:`undo_model`."""
        if undoable and self.model is not None:
            self._undo.append((self.model, self.model_path))
            del self._undo[:-MAX_UNDO]
        self.model, self.model_path = model, path
        self.operator_threshold = None
        self._set_model.emit(model)
        self._set_threshold.emit(None)
        self.model_changed.emit(model, path)
        self.threshold_changed.emit(self.threshold)
        self.undo_available.emit(bool(self._undo))
        self.message.emit(f"model {reason}: {model.detector_kind} {model.model_hash[:12]}")

    def undo_model(self) -> None:
        """Go back to the model in use before the last swap."""
        if self._undo:
            model, path = self._undo.pop()
            self.set_model(model, path, reason="restored", undoable=False)

    def apply_calibration(self, calibration: Calibration) -> None:
        """Swap in the current detector with ``calibration`` (undoable)."""
        if self.model is not None:
            self._recalibrate.emit(self.model, calibration)

    def fit(self, request: FitRequest) -> None:
        """Fit a new model on the fit worker (see the fitter's signals)."""
        self._fit.emit(request)

    def cancel_fit(self) -> None:
        """Cancel the running fit."""
        self.fitter.cancel()

    # -- threshold -----------------------------------------------------------------------

    @property
    def threshold(self) -> float:
        """The raw threshold in use: the operator's, else the model's (1.0 without a model)."""
        if self.operator_threshold is not None:
            return self.operator_threshold
        return float(self.model.threshold) if self.model is not None else 1.0

    def set_threshold(self, threshold: float | None) -> None:
        """Decide later frames at ``threshold`` (``None``: the model's calibrated one)."""
        self.operator_threshold = None if threshold is None else float(threshold)
        self._set_threshold.emit(self.operator_threshold)
        self.threshold_changed.emit(self.threshold)

    # -- source and run ------------------------------------------------------------------

    def open_source(self, spec: str) -> None:
        """Open a source (paused) on the inspection worker."""
        self._open_source.emit(spec)

    def set_frame_limit(self, frames: int | None) -> None:
        """Pause after ``frames`` more frames (e.g. ``--quit-after``); ``None`` removes the limit."""
        self._set_frame_limit.emit(frames)

    def start(self) -> None:
        """Inspect continuously."""
        self._start.emit()

    def pause(self) -> None:
        """Pause after the current frame."""
        self._pause.emit()

    def step(self) -> None:
        """Inspect one frame."""
        self._step.emit()

    def stop(self) -> None:
        """Stop and release the source."""
        self._stop.emit()

    def set_segmentation_mode(self, mode: str) -> None:
        """Change the segmentation mode (takes effect at once)."""
        self.segmentation.set_mode(mode)

    # -- batch ---------------------------------------------------------------------------

    def run_batch(self, folder: str) -> None:
        """Score ``folder`` on the batch worker, resuming an interrupted run."""
        self._run_batch.emit(str(folder))

    def cancel_batch(self) -> None:
        """Stop the running batch after its current chunk."""
        self.batch.cancel()

    def request_detail(self, path: str) -> None:
        """Ask for a file's image and heatmap (``batch.detail_ready`` answers)."""
        self._detail.emit(str(path))

    def export_csv(self, path: str) -> None:
        """Export the batch as CSV at the current threshold."""
        self._export_csv.emit(str(path), self.threshold)

    def export_html(self, path: str) -> None:
        """Export the batch as a self-contained HTML report at the current threshold."""
        self._export_html.emit(str(path), self.threshold)

    # -- life ----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Cancel long work, stop every worker thread and close the database."""
        self.fitter.cancel()
        self.batch.cancel()
        for host in self._hosts:
            host.shutdown()
        self._hosts.clear()
        if self.store is not None:
            self.store.close()

    def _on_loaded(self, model: InspectingModel, path: str) -> None:
        self.set_model(model, path)

    def _on_recalibrated(self, model: InspectingModel) -> None:
        self.set_model(model, "", reason="recalibrated")

    def _on_fitted(self, model: InspectingModel, path: str) -> None:
        self.set_model(model, path, reason="refitted")

    def _on_saved(self, path: str, model_hash: str) -> None:
        self.model_path = path
        self.model_saved.emit(path)
        self.message.emit(f"model saved to {path} ({model_hash[:12]})")

    def _on_demo(self, model: InspectingModel, path: str, spec: str) -> None:
        self.set_model(model, path, reason="loaded (demo)")
        self.demo_ready.emit(spec)
