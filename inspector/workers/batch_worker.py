"""The batch worker: scores a folder in chunks, resumable by content, and exports the review.

Every decision is written to the results database before it is shown, with the
sha256 of the file's bytes (``content_hash``), so a batch stopped half way (even
by killing the app) resumes where it was. On resume a file counts as done only
when its newest row for this source and model is OK or NG *and* its content hash
equals the file's bytes now:

- a file replaced under the same name is scored again;
- a file that could not be read (an ERROR row) is always tried again, whatever
  its content: the failure may have been passing (a copy in progress, permissions,
  a decoder since fixed) and trying costs one failed decode;
- a row without a content hash (recorded before schema 2) is not trusted as done.

:meth:`BatchWorker.rescore_all` scores the whole folder again ignoring earlier rows,
and :meth:`BatchWorker.rescore_files` some of its files; the earlier rows stay in
the database as history, and the table shows the newest verdict per file.

The content hash is taken right after the file was decoded: a file replaced within
that moment is recorded with its new hash and its old verdict.
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
        batch_started(str, int, int): source description, files to score, files kept (resumed).
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
        self._rows: dict[str, BatchRow] = {}  # by path_key: the newest row of each file
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
        """Start a batch on ``folder``, resuming what the current model already scored there (same bytes)."""
        self._start(folder, "resume")

    @Slot(str)
    def rescore_all(self, folder: str) -> None:
        """Score every file of ``folder`` again, ignoring earlier rows (they stay as history)."""
        self._start(folder, "all")

    @Slot(str, list)
    def rescore_files(self, folder: str, paths: list) -> None:
        """Score ``paths`` (files of ``folder``) again; the other rows of the current batch are kept."""
        self._start(folder, "files", [str(p) for p in paths])

    def _start(self, folder: str, mode: str, paths: list[str] | None = None) -> None:
        from inspector.sources.folder import FolderSource, path_key

        self._finish_source()
        self._cancel.clear()
        if self._model is None:
            self.error_occurred.emit("open a model before running a batch")
            return
        name = FolderSource(folder).describe()
        if mode == "resume":
            kept = self._previous_rows(name, path_key)
            skip = [row.path for row in kept.values()]
        elif mode == "all":
            kept, skip = {}, []
        else:
            from inspector.core.imageio import list_images

            wanted = {path_key(p) for p in paths or ()}
            same = name == self._source_name
            kept = {k: row for k, row in self._rows.items() if same and k not in wanted}
            skip = [str(p) for p in list_images([folder], recursive=False).images if path_key(p) not in wanted]
        self._rows = kept
        source = FolderSource(folder, skip_paths=skip)
        source.open()
        self._source, self._source_name = source, source.describe()
        self.batch_started.emit(source.describe(), source.total, len(kept))
        if kept:
            self.rows_ready.emit(list(kept.values()))
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
            write_csv(path, list(self._rows.values()), threshold)
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
            for row in list(self._rows.values()):
                if row.verdict(threshold) != "NG":
                    continue
                try:
                    image = read_image(row.path)
                except Exception as exc:
                    logger.warning("report: %s", exc)
                    continue
                heatmap = self._heatmap(image)
                yield row, image, (make_overlay(image, heatmap, model=self._model) if heatmap is not None else None)

        try:
            write_html(path, list(self._rows.values()), threshold, ng_images(), source=self._source_name,
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
        from inspector.sources.folder import path_key

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
            for row in rows:
                self._rows[path_key(row.path)] = row
            self.rows_ready.emit(rows)
        self.batch_progress.emit(source.done, source.total)
        if source.finished:
            self._finish_source()
            self.batch_finished.emit(f"batch done: {len(self._rows)} files")
        else:
            self._timer.start()

    def _record(self, results: list) -> None:
        from inspector.storage.results_db import file_digest

        store = self._store()
        if store is None:
            return
        try:
            for result in results:
                path = result.frame.path
                store.record(result, content_hash=file_digest(path) if path else None)
        except Exception as exc:
            logger.exception("recording batch results failed")
            self.error_occurred.emit(f"results database: {exc}")

    def _errors(self, failures: list) -> list[BatchRow]:
        from inspector.storage.results_db import file_digest

        store = self._store()
        rows = []
        for failure in failures:
            if store is not None:
                try:
                    store.record_error(failure.source, failure.message, failure.path, failure.frame_id,
                                       self._model.model_hash,
                                       content_hash=file_digest(failure.path) if failure.path else None)
                except Exception as exc:
                    self.error_occurred.emit(f"results database: {exc}")
            rows.append(BatchRow(failure.path or "", math.nan, utc_now(), error=failure.message))
        return rows

    # -- helpers -------------------------------------------------------------------------

    def _previous_rows(self, source: str, path_key: Callable[[str], str]) -> dict[str, BatchRow]:
        """Rows this model recorded for ``source`` that still hold (same bytes, not ERROR), with thumbnails."""
        from inspector.core.imageio import read_image
        from inspector.storage.results_db import ERROR_VERDICT, file_digest

        store = self._store()
        if store is None:
            return {}
        model_hash = self._model.model_hash
        try:
            latest = store.latest_rows(source, model_hash)
        except Exception as exc:
            self.error_occurred.emit(f"results database: {exc}; scoring the whole folder")
            return {}
        kept: dict[str, BatchRow] = {}
        for path, record in latest.items():
            if record.get("verdict") == ERROR_VERDICT or record.get("raw_score") is None:
                continue  # an unreadable file is always tried again
            digest = record.get("content_hash")
            if digest is None or file_digest(path) != digest:
                continue  # replaced (or gone) since, or recorded without a hash: score it again
            try:
                image = thumbnail(read_image(path))
            except Exception:
                continue
            kept[path_key(path)] = BatchRow(path, float(record["raw_score"]), record.get("time") or "",
                                            float(record.get("latency_ms") or 0.0), model_hash, image, None, True)
        return dict(sorted(kept.items(), key=lambda item: Path(item[1].path).name))

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
