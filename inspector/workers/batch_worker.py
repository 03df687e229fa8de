"""The batch worker: scores a folder in chunks, resumable, and exports the review.

Every decision is written to the results database before it is shown, so a
batch stopped half way (even by killing the app) resumes where it was: files
already scored by the same model are read back, not scored again.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from inspector.pipeline.protocol import InspectingModel
from inspector.reports.batch_report import BatchRow, thumbnail, utc_now, write_csv, write_html

logger = logging.getLogger(__name__)

CHUNK = 8  # frames per tick: big enough to batch on the device, small enough to stay responsive


class BatchWorker(QObject):
    """Folder batches on their own thread.

    Args:
        store_factory: Returns the shared ResultStore (``None``: nothing recorded, no resume).

    Signals:
        batch_started(str, int, int): source description, files to score, files resumed.
        rows_ready(list): new :class:`BatchRow` objects.
        batch_progress(int, int): files done and total in this run.
        batch_finished(str): a summary line.
        detail_ready(str, ndarray, object): a file, its image and its Heatmap (or ``None``).
        export_finished(str): the written file.
        error_occurred(str): a message for the status bar.
    """

    batch_started = Signal(str, int, int)
    rows_ready = Signal(list)
    batch_progress = Signal(int, int)
    batch_finished = Signal(str)
    detail_ready = Signal(str, object, object)
    export_finished = Signal(str)
    error_occurred = Signal(str)

    def __init__(self, store_factory: Callable[[], Any] | None = None) -> None:
        super().__init__()
        self._store_factory = store_factory
        self._model: InspectingModel | None = None
        self._source: Any = None
        self._source_name = ""
        self._rows: list[BatchRow] = []
        self._cancel = threading.Event()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._tick)

    def cancel(self) -> None:
        """Stop the running batch after the current chunk (call from any thread)."""
        self._cancel.set()

    @Slot(object)
    def set_model(self, model: InspectingModel | None) -> None:
        """Score later batches (and details) with ``model``."""
        self._model = model

    @Slot(str)
    def run(self, folder: str) -> None:
        """Start a batch on ``folder``, resuming what the current model already scored there."""
        from inspector.sources.folder import FolderSource, path_key

        self._finish_source()
        self._cancel.clear()
        if self._model is None:
            self.error_occurred.emit("open a model before running a batch")
            return
        source = FolderSource(folder)
        self._rows = self._previous_rows(source.describe(), path_key)
        source = FolderSource(folder, skip_paths=[row.path for row in self._rows])
        source.open()
        self._source, self._source_name = source, source.describe()
        self.batch_started.emit(source.describe(), source.total, len(self._rows))
        if self._rows:
            self.rows_ready.emit(list(self._rows))
        self._timer.start()

    @Slot(str)
    def request_detail(self, path: str) -> None:
        """Read ``path`` and compute its fast map; answers with ``detail_ready``."""
        from inspector.core.imageio import read_image

        try:
            image = read_image(path)
        except Exception as exc:
            self.error_occurred.emit(str(exc))
            return
        self.detail_ready.emit(path, image, self._heatmap(image))

    @Slot(str, float)
    def export_csv(self, path: str, threshold: float) -> None:
        """Write the current batch as CSV."""
        try:
            write_csv(path, self._rows, threshold)
        except Exception as exc:
            self.error_occurred.emit(f"CSV export failed: {exc}")
            return
        self.export_finished.emit(path)

    @Slot(str, float)
    def export_html(self, path: str, threshold: float) -> None:
        """Write the self-contained HTML report (NG images with their overlays embedded)."""
        from inspector.core.imageio import read_image
        from inspector.workers.segmentation_worker import make_overlay

        def ng_images():
            for row in self._rows:
                if row.verdict(threshold) != "NG":
                    continue
                try:
                    image = read_image(row.path)
                except Exception as exc:
                    logger.warning("report: %s", exc)
                    continue
                heatmap = self._heatmap(image)
                yield row, image, (make_overlay(image, heatmap) if heatmap is not None else None)

        try:
            write_html(path, self._rows, threshold, ng_images(), source=self._source_name,
                       calibration=getattr(self._model, "calibration", None))
        except Exception as exc:
            logger.exception("HTML export failed")
            self.error_occurred.emit(f"HTML export failed: {exc}")
            return
        self.export_finished.emit(path)

    @Slot()
    def shutdown(self) -> None:
        """Stop the batch (its decisions are already in the database)."""
        self._timer.stop()
        self._finish_source()

    # -- the loop ------------------------------------------------------------------------

    def _tick(self) -> None:
        source = self._source
        if source is None:
            return
        if self._cancel.is_set():
            self._finish_source()
            self.batch_finished.emit(f"stopped after {source.done} of {source.total} files; run again to resume")
            return
        frames = []
        while len(frames) < CHUNK:
            frame = source.read()
            if frame is None:
                break
            frames.append(frame)
        rows = self._errors(source.take_failures())
        if frames:
            try:
                results = self._model.inspect(frames)
            except Exception as exc:
                logger.exception("batch inspection failed")
                self.error_occurred.emit(f"batch stopped: {exc}")
                return
            self._record(results)
            for result in results:
                rows.append(BatchRow(result.frame.path or "", result.raw_score, utc_now(), result.latency_ms,
                                     result.model_hash, thumbnail(result.frame.image)))
        if rows:
            self._rows.extend(rows)
            self.rows_ready.emit(rows)
        self.batch_progress.emit(source.done, source.total)
        if source.finished:
            self._finish_source()
            self.batch_finished.emit(f"batch done: {len(self._rows)} files")
        else:
            self._timer.start()

    def _record(self, results: list) -> None:
        store = self._store()
        if store is None:
            return
        try:
            for result in results:
                store.record(result)
        except Exception as exc:
            logger.exception("recording batch results failed")
            self.error_occurred.emit(f"results database: {exc}")

    def _errors(self, failures: list) -> list[BatchRow]:
        store = self._store()
        rows = []
        for failure in failures:
            if store is not None:
                try:
                    store.record_error(failure.source, failure.message, failure.path, failure.frame_id,
                                       self._model.model_hash)
                except Exception as exc:
                    self.error_occurred.emit(f"results database: {exc}")
            rows.append(BatchRow(failure.path or "", math.nan, utc_now(), error=failure.message))
        return rows

    # -- helpers -------------------------------------------------------------------------

    def _previous_rows(self, source: str, path_key: Callable[[str], str]) -> list[BatchRow]:
        """Rows this model already recorded for ``source`` (newest per file), with thumbnails."""
        from inspector.core.imageio import read_image

        store = self._store()
        if store is None:
            return []
        model_hash = self._model.model_hash
        seen: dict[str, BatchRow] = {}
        for record in store.query(source=source, limit=None):
            path = record.get("path")
            if not path or record.get("model_hash") != model_hash or path_key(path) in seen:
                continue
            error = record.get("error")
            image = None
            if error is None:
                try:
                    image = thumbnail(read_image(path))
                except Exception:
                    continue  # gone since: score it again if it comes back
            raw = record.get("raw_score")
            seen[path_key(path)] = BatchRow(path, math.nan if raw is None else float(raw), record.get("time") or "",
                                            float(record.get("latency_ms") or 0.0), model_hash, image, error, True)
        return sorted(seen.values(), key=lambda row: Path(row.path).name)

    def _heatmap(self, image: Any) -> Any:
        model = self._model
        methods = tuple(getattr(model, "supported_segmenters", ())) if model is not None else ()
        if not methods:
            return None
        try:
            return model.heatmaps([image], method="fast" if "fast" in methods else methods[0])[0]
        except Exception as exc:
            self.error_occurred.emit(f"heatmap failed: {exc}")
            return None

    def _store(self) -> Any:
        if self._store_factory is None:
            return None
        try:
            return self._store_factory()
        except Exception as exc:
            self.error_occurred.emit(f"results database: {exc}")
            return None

    def _finish_source(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            source.release()
