"""The segmentation worker: follow-up maps and NG overlays, on its own thread.

The fast map comes with the frame's record from the inspection pass; this worker
only does what follows for NG frames: the gradient map (handed the frame and its
fast map, so no second backbone pass), the overlay image, and saving it beside the
NG frame. Jobs go into a bounded queue that keeps the newest: when the maps cannot
keep up with a live camera, the oldest jobs are dropped, never the detection. The
model decides the device (CUDA when present, the CPU otherwise).
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal, Slot

from inspector.core.records import Heatmap, InspectionResult
from inspector.pipeline.protocol import InspectingModel
from inspector.workers.map_plan import SEGMENTATION_MODES, MapPlan, plan_maps

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentationJob:
    """One NG frame to finish.

    Attributes:
        result: The decided frame, with its inline fast map if it has one.
        method: ``"gradient"`` (compute that map) or ``"overlay"`` (draw ``result.heatmap``).
        row_id: Its row in the results database, if recorded.
        image_path: Where the NG frame was saved, if it was.
    """

    result: InspectionResult
    method: str
    row_id: int | None = None
    image_path: str | None = None


class SegmentationWorker(QObject):
    """Computes follow-up maps and NG overlays off the detection thread.

    Args:
        capacity: Jobs kept waiting; older ones are dropped first.
        mode: One of :data:`SEGMENTATION_MODES`.
        store_factory: Returns the shared (thread-safe) ResultStore, for NG overlays.
        overlay_opacity: Heatmap opacity in saved NG images.

    Signals:
        overlay_ready(InspectionResult, ndarray): an NG result with its final map (the gradient map
            when the mode asks for one, else its fast map) and the overlay image.
        error_occurred(str): a message for the status bar.
    """

    overlay_ready = Signal(object, object)
    error_occurred = Signal(str)
    _job_queued = Signal()

    def __init__(
        self,
        capacity: int = 4,
        mode: str = "fast",
        store_factory: Callable[[], Any] | None = None,
        overlay_opacity: float = 0.5,
    ) -> None:
        super().__init__()
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._lock = threading.Lock()
        self._jobs: collections.deque[SegmentationJob] = collections.deque(maxlen=capacity)
        self._model: InspectingModel | None = None
        self._supported: tuple[str, ...] = ()
        self._warned: set[str] = set()
        self._mode = "off"
        self.set_mode(mode)
        self._store_factory = store_factory
        self._opacity = overlay_opacity
        self._broken: set[str] = set()
        self.dropped = 0
        self.done = 0
        self._job_queued.connect(self._process, Qt.ConnectionType.QueuedConnection)

    # -- any thread ----------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """The current segmentation mode."""
        with self._lock:
            return self._mode

    def set_mode(self, mode: str) -> None:
        """Change the mode (thread-safe)."""
        if mode not in SEGMENTATION_MODES:
            raise ValueError(f"unknown segmentation mode {mode!r}; choose one of {', '.join(SEGMENTATION_MODES)}")
        with self._lock:
            self._mode = mode
        self._warn_once()

    def plan(self) -> MapPlan:
        """The maps the current mode gives frames of the current model (thread-safe)."""
        with self._lock:
            return plan_maps(self._mode, self._supported)

    def submit(self, result: InspectionResult, row_id: int | None = None, image_path: str | None = None) -> bool:
        """Queue the follow-up of an NG ``result`` (thread-safe, never blocks).

        NG frames get the gradient map when the mode asks for one, else an overlay
        of the fast map they carry; OK frames need nothing here.

        Args:
            result: The decision.
            row_id: Its results-database row, so the NG overlay can be attached to it.
            image_path: The saved NG frame; the overlay is written beside it.

        Returns:
            True if a job was queued.
        """
        if not result.anomalous:
            return False
        with self._lock:
            plan = plan_maps(self._mode, self._supported)
            method = plan.followup or ("overlay" if result.heatmap is not None else None)
            if method is None:
                return False
            if len(self._jobs) == self._jobs.maxlen:
                self.dropped += 1
            self._jobs.append(SegmentationJob(result, method, row_id, image_path))
        self._job_queued.emit()
        return True

    def pending(self) -> int:
        """Jobs waiting."""
        with self._lock:
            return len(self._jobs)

    # -- worker thread -------------------------------------------------------------------

    @Slot(object)
    def set_model(self, model: InspectingModel | None) -> None:
        """Compute maps with ``model``; queued jobs of other models are dropped."""
        self._model = model
        self._broken.clear()
        supported = tuple(model.supported_segmenters) if model is not None else ()
        with self._lock:
            self._jobs.clear()
            self._supported = supported
            self._warned.clear()
        self._warn_once()

    @Slot()
    def shutdown(self) -> None:
        """Finish the queued NG overlays (at most ``capacity``) and drop the other jobs."""
        with self._lock:
            jobs = [job for job in self._jobs if job.result.anomalous and job.image_path]
            self._jobs.clear()
        for job in jobs:
            self._run(job, emit=False)

    @Slot()
    def _process(self) -> None:
        with self._lock:
            job = self._jobs.popleft() if self._jobs else None
        if job is not None:
            self._run(job, emit=True)

    def _run(self, job: SegmentationJob, emit: bool) -> None:
        model = self._model
        if model is None:
            return
        heatmap = job.result.heatmap
        if job.method == "gradient" and "gradient" not in self._broken:
            try:
                fast = [heatmap] if heatmap is not None else None
                heatmap = model.heatmaps([job.result.frame.image], method="gradient", fast=fast)[0]
            except Exception as exc:
                # One message, not one per frame: the method stays off until the model changes.
                logger.exception("segmentation failed")
                self._broken.add("gradient")
                self.error_occurred.emit(f"gradient maps failed ({exc}); they stay off for this model")
                heatmap = job.result.heatmap
        if heatmap is None:
            return
        self.done += 1
        result = replace(job.result, heatmap=heatmap)
        overlay = make_overlay(result.frame.image, heatmap, self._opacity, model)
        self._save(job, overlay)
        if emit:
            self.overlay_ready.emit(result, overlay)

    def _warn_once(self) -> None:
        """Say once per model why the mode cannot be followed as asked."""
        with self._lock:
            note = plan_maps(self._mode, self._supported).note if self._model is not None else ""
            fresh = bool(note) and note not in self._warned
            self._warned.add(note)
        if fresh:
            self.error_occurred.emit(note)

    def _save(self, job: SegmentationJob, overlay: np.ndarray) -> None:
        """Write the overlay beside the saved NG frame, attached to its row when the store can.

        A decision that waits in the journal (no row, no saved frame yet) has its overlay
        dropped with a log line: the journal keeps the frame, and the decision, not the drawing.
        """
        if not job.image_path:
            if job.row_id is None and job.result.anomalous:
                logger.info("overlay of %s dropped: its decision waits in the journal",
                            job.result.frame.path or f"{job.result.frame.source} #{job.result.frame.frame_id}")
            return
        try:
            store = self._store_factory() if self._store_factory else None
            attach = getattr(store, "attach_overlay", None)
            if attach is not None and job.row_id is not None:
                attach(job.row_id, overlay)
            else:
                from inspector.core.imageio import write_image

                write_image(overlay_path_for(job.image_path), overlay)
        except Exception as exc:
            logger.exception("saving an NG overlay failed")
            self.error_occurred.emit(f"saving NG image: {exc}")


def overlay_path_for(image_path: str) -> str:
    """The overlay file that belongs to a saved NG frame (``..._ng.png`` -> ``..._overlay.png``)."""
    stem = image_path[: -len("_ng.png")] if image_path.endswith("_ng.png") else image_path.rsplit(".", 1)[0]
    return f"{stem}_overlay.png"


def make_overlay(image: np.ndarray, heatmap: Heatmap, opacity: float = 0.5, model=None) -> np.ndarray:
    """The frame with its heatmap blended in, the above-threshold regions outlined and, when
    ``model`` has inspection regions, its ignored area dimmed and hatched as in the live view."""
    from inspector.segmentation.overlay import render_overlay

    return render_overlay(image, heatmap, opacity=opacity, contours=True, inspected=inspected_mask(model))


def inspected_mask(model) -> np.ndarray | None:
    """The model's inspected-region mask (``S x S`` bool), or ``None`` when it inspects everything."""
    regions = getattr(model, "regions", None)
    return None if regions is None else regions.inspected
