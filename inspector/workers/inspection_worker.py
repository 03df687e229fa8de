"""The detection worker: pulls frames from a source, inspects them, records and emits results.

Each frame is decided by one ``InspectionModel.inspect`` call that also draws the
fast map when the segmentation mode asks for it (one backbone pass), so the
record it emits, records and hands on is complete: nothing is joined later.

One :class:`InspectionWorker` lives on its own QThread for the whole session.
It reads frames with a short timeout from a timer tick, so its slots (a new
model, a new threshold, pause, step) run between frames: a model swap never
lands in the middle of an inspection.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from inspector.core.records import Frame, InspectionResult
from inspector.pipeline.protocol import InspectingModel
from inspector.workers.decision_recorder import DecisionRecorder, RecorderState
from inspector.workers.map_plan import MapPlan

logger = logging.getLogger(__name__)

IDLE, RUNNING, PAUSED, FINISHED = "idle", "running", "paused", "finished"
_READ_TIMEOUT = 0.05  # seconds a tick waits for a live frame, so slots stay responsive
_MAX_CONSECUTIVE_ERRORS = 5
REPEATED_ERRORS_MESSAGE = "paused after repeated inspection errors"
_FLUSH_INTERVAL_MS = 1000  # how often a failing store is looked at (the recorder backs off further)

SourceFactory = Callable[[str], Any]
StoreFactory = Callable[[], Any]
ResultListener = Callable[[InspectionResult, "int | None", "str | None", "str | None"], None]


class InspectionWorker(QObject):
    """Inspects frames of one source at a time with the current model.

    Args:
        source_factory: Builds an unopened FrameSource from a spec string
            (``inspector.sources.spec.parse_source_spec`` by default).
        store_factory: Returns the (thread-safe) ResultStore; first called on this thread.
            Decisions go through a :class:`DecisionRecorder` around it (journalled while it fails).
        recorder: The recorder to use instead of one built around ``store_factory``.
        on_result: Called on the worker thread as ``on_result(result, row_id, image_path)``
            for every result (e.g. the segmentation worker's thread-safe ``submit``).
        map_plan: Returns the current :class:`MapPlan` (thread-safe; e.g. the segmentation
            worker's ``plan``); ``None``: no maps.

    Signals:
        result_ready(InspectionResult): a frame was decided.
        source_opened(str): a source was opened; its description.
        source_state_changed(str, str): source state name and message (LOST, RECONNECTING, ...).
        run_state_changed(str): ``idle``, ``running``, ``paused`` or ``finished``.
        read_failed(str): a frame could not be read (e.g. corrupt file).
        error_occurred(str): something went wrong; a message for the status bar.
        recording_state_changed(RecorderState): decisions started or stopped waiting in the journal.
        resumed(int): files of the opened folder already recorded for this model, skipped.
    """

    result_ready = Signal(object)
    source_opened = Signal(str)
    source_state_changed = Signal(str, str)
    run_state_changed = Signal(str)
    read_failed = Signal(str)
    error_occurred = Signal(str)
    recording_state_changed = Signal(object)
    resumed = Signal(int)

    def __init__(
        self,
        source_factory: SourceFactory | None = None,
        store_factory: StoreFactory | None = None,
        on_result: Callable[[InspectionResult, int | None, str | None], None] | None = None,
        map_plan: Callable[[], MapPlan] | None = None,
        recorder: DecisionRecorder | None = None,
    ) -> None:
        super().__init__()
        self._source_factory = source_factory
        self._store_factory = store_factory
        if recorder is None and store_factory is not None:
            recorder = DecisionRecorder(store_factory)
        self.recorder = recorder
        self._recording = RecorderState()
        self._on_result = on_result
        self._listeners: tuple[ResultListener, ...] = ()
        self._failure_listeners: tuple[Callable[..., None], ...] = ()
        self._map_plan = map_plan
        self._model: InspectingModel | None = None
        self._threshold: float | None = None
        self._source: Any = None
        self._state = IDLE
        self._step_pending = False
        self._remaining: int | None = None
        self._errors = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._tick)
        self._flush_timer = QTimer(self)
        self._flush_timer.setInterval(_FLUSH_INTERVAL_MS)
        self._flush_timer.timeout.connect(self.flush_journal)

    def add_result_listener(self, listener: ResultListener) -> None:
        """Call ``listener(result, row_id, image_path, uid)`` on the worker thread after each recorded decision.

        Thread-safe; ``uid`` is the decision's unique id in the results database (``None`` without
        a recorder). A listener must be quick (hand the work to its own thread) and never raise.
        """
        self._listeners = (*self._listeners, listener)

    def add_failure_listener(self, listener: Callable[[Any, "str | None", "str | None"], None]) -> None:
        """Call ``listener(failure, model_hash, uid)`` on the worker thread after each recorded ERROR decision
        (a :class:`~inspector.sources.base.FailedRead`); thread-safe, like :meth:`add_result_listener`."""
        self._failure_listeners = (*self._failure_listeners, listener)

    # -- slots (run on the worker thread) ------------------------------------------------

    @Slot(object)
    def set_model(self, model: InspectingModel | None) -> None:
        """Use ``model`` from the next frame on."""
        self._model = model

    @Slot(object)
    def set_threshold(self, threshold: float | None) -> None:
        """Decide with this raw threshold from the next frame on (``None``: the model's own)."""
        self._threshold = None if threshold is None else float(threshold)

    @Slot(object)
    def set_frame_limit(self, frames: int | None) -> None:
        """Pause by itself after ``frames`` more inspected frames (``None``: no limit)."""
        self._remaining = None if frames is None else int(frames)

    @Slot(str)
    def open_source(self, spec: str) -> None:
        """Release the current source and open ``spec``; stays paused until :meth:`start`."""
        self._release_source()
        try:
            factory = self._source_factory or _default_source_factory
            source = factory(spec)
            source.add_state_listener(self._forward_state(source))
            recorded = self._recorded_files(source)
            if recorded:
                source.resume_from(recorded)
            source.open()
        except Exception as exc:  # a bad spec or device must not kill the worker
            self._set_state(IDLE)
            self.error_occurred.emit(f"cannot open source {spec}: {exc}")
            return
        self._source = source
        self.source_opened.emit(source.describe())
        self.source_state_changed.emit(source.state.value, source.status_message)
        skipped = int(getattr(source, "resumed", 0) or 0)
        if skipped:
            self.resumed.emit(skipped)
            self.error_occurred.emit(f"resumed: {skipped} files already recorded, skipped")
        self._set_state(PAUSED)

    @Slot()
    def flush_journal(self, force: bool = False) -> RecorderState | None:
        """Write journalled decisions to the database if it works again; report the state."""
        if self.recorder is None:
            return None
        state = self.recorder.flush(force=force)
        self._report_recording(state)
        return state

    def _recorded_files(self, source: Any) -> dict[str, str | None]:
        """Files of this source already decided by the current model (empty: nothing to resume)."""
        if self.recorder is None or self._model is None or not callable(getattr(source, "resume_from", None)):
            return {}
        self.flush_journal(force=True)  # journalled decisions count as recorded too
        try:
            return self.recorder.done_files(source.describe(), self._model.model_hash)
        except Exception as exc:  # noqa: BLE001 - no resume rather than no run
            logger.warning("not resuming %s: cannot look up recorded files: %s", source.describe(), exc)
            return {}

    @Slot()
    def start(self) -> None:
        """Inspect frames continuously."""
        if self._source is None:
            self.error_occurred.emit("no source open")
            return
        self._step_pending = False
        self._set_state(RUNNING)
        self._timer.start()

    @Slot()
    def pause(self) -> None:
        """Stop after the current frame; the source stays open."""
        if self._state == RUNNING:
            self._set_state(PAUSED)

    @Slot()
    def step(self) -> None:
        """Inspect exactly one more frame, then pause."""
        if self._source is None:
            self.error_occurred.emit("no source open")
            return
        self._step_pending = True
        self._set_state(RUNNING)
        self._timer.start()

    @Slot()
    def stop(self) -> None:
        """Stop and release the source."""
        self._release_source()
        self._set_state(IDLE)

    @Slot()
    def shutdown(self) -> None:
        """Release everything this worker holds (called on its thread before it ends)."""
        self._timer.stop()
        self._flush_timer.stop()
        self._release_source()
        self.flush_journal(force=True)

    # -- the loop ------------------------------------------------------------------------

    def _tick(self) -> None:
        if self._state != RUNNING or self._source is None:
            return
        if self._model is None:
            self.error_occurred.emit("no model loaded")
            self._set_state(PAUSED)
            return
        frame = self._source.read(timeout=_READ_TIMEOUT)
        for failure in self._source.take_failures():
            self._record_failure(failure)
            self.read_failed.emit(f"{failure.path or failure.source}: {failure.message}")
        if frame is None:
            if self._source.finished:
                self._set_state(FINISHED)
            else:
                self._timer.start()
            return
        if self._inspect(frame):
            if self._remaining is not None:
                self._remaining -= 1
            if self._step_pending or self._remaining == 0:
                self._step_pending = False
                self._set_state(PAUSED)
        if self._state == RUNNING:
            self._timer.start()

    def _inspect(self, frame: Frame) -> bool:
        started = time.perf_counter()
        model = self._model
        plan = self._map_plan() if self._map_plan is not None else MapPlan()
        # The plan may still be of the previous model for a frame: never ask for a map this one lacks.
        maps = plan.inline if plan.inline in model.supported_segmenters else None
        try:
            result = model.inspect([frame], maps=maps, threshold=self._threshold, maps_on=plan.inline_on)[0]
        except Exception as exc:
            self._errors += 1
            logger.exception("inspection failed")
            self.error_occurred.emit(f"inspection failed: {exc}")
            if self._errors >= _MAX_CONSECUTIVE_ERRORS:
                self.error_occurred.emit(REPEATED_ERRORS_MESSAGE)
                self._set_state(PAUSED)
            return False
        self._errors = 0
        if not result.latency_ms:
            result = replace(result, latency_ms=(time.perf_counter() - started) * 1000.0)
        row_id, image_path = self._record(result, self._content_hash(frame))
        if self._on_result is not None:
            self._on_result(result, row_id, image_path)
        uid = getattr(self.recorder, "last_uid", None) if self.recorder is not None else None
        for listener in self._listeners:
            try:
                listener(result, row_id, image_path, uid)
            except Exception:  # noqa: BLE001 - a listener never stops the detection
                logger.exception("a result listener failed")
        self.result_ready.emit(result)
        return True

    def _record(self, result: InspectionResult, content_hash: str | None = None) -> tuple[int | None, str | None]:
        """Write the decision (and an NG frame as PNG), or journal it; returns the row id and image path
        (``None, None`` when it waits in the journal)."""
        if self.recorder is None:
            return None, None
        try:
            recorded = self.recorder.record(result, content_hash)
        except Exception as exc:  # noqa: BLE001 - neither store nor journal nor memory: say so, go on
            logger.exception("recording a result failed")
            self.error_occurred.emit(f"results database: {exc}")
            recorded = (None, None)
        self._report_recording(self.recorder.state)
        return recorded

    def _record_failure(self, failure: Any) -> None:
        """A file that could not be read is a decision too (verdict ERROR)."""
        if self.recorder is None:
            return
        try:
            self.recorder.record_error(failure.source, failure.message, failure.path, failure.frame_id,
                                       getattr(self._model, "model_hash", None),
                                       getattr(failure, "content_hash", None))
        except Exception as exc:  # noqa: BLE001
            logger.exception("recording a failed read failed")
            self.error_occurred.emit(f"results database: {exc}")
        self._report_recording(self.recorder.state)
        uid = getattr(self.recorder, "last_uid", None)
        for listener in self._failure_listeners:
            try:
                listener(failure, getattr(self._model, "model_hash", None), uid)
            except Exception:  # noqa: BLE001 - a listener never stops the detection
                logger.exception("a failure listener failed")

    def _content_hash(self, frame: Frame) -> str | None:
        take = getattr(self._source, "take_content_hash", None)
        return take(frame) if take is not None else None

    def _report_recording(self, state: RecorderState) -> None:
        """Emit the recorder's state when it changed; keep retrying while it is not healthy."""
        if state != self._recording:
            self._recording = state
            self.recording_state_changed.emit(state)
        if state.healthy:
            self._flush_timer.stop()
        elif not self._flush_timer.isActive():
            self._flush_timer.start()

    # -- helpers -------------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.run_state_changed.emit(state)

    def _release_source(self) -> None:
        self._timer.stop()
        source, self._source = self._source, None
        if source is not None:
            try:
                source.release()
            except Exception:
                logger.exception("releasing the source failed")

    def _forward_state(self, source: Any) -> Callable[[Any, str], None]:
        """A state listener (called on the capture thread) that re-emits as a queued signal."""

        def listener(state: Any, message: str) -> None:
            if source is self._source:
                self.source_state_changed.emit(getattr(state, "value", str(state)), message)

        return listener


def _default_source_factory(spec: str) -> Any:
    from inspector.sources.spec import parse_source_spec

    return parse_source_spec(spec)
