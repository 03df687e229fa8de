"""The results database: one SQLite row per decision, NG images as PNG files beside it.

The database runs in WAL mode and every :meth:`ResultStore.record` commits at
once, so a decision the operator has seen survives the process being killed.
Readers in other processes (the CLI, a second window) do not block the writer.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.imageio import file_digest, write_image  # noqa: F401 (file_digest: part of this API)
from inspector.core.paths import data_dir
from inspector.core.records import InspectionResult
from inspector.storage.audit import audit_query, audit_values
from inspector.storage.sqlite_schema import (  # noqa: F401 (SCHEMA_VERSION, DB_FILENAME: part of this API)
    DB_FILENAME,
    ERROR_VERDICT,
    SCHEMA_VERSION,
    ResultStoreError,
    open_results_read_only,
    migrate,
    read_problem,
)
from inspector.storage.stores import default_station, overlay_path_for, write_ng_images

def default_db_path() -> Path:
    """Where results go unless configured: ``$INSPECTOR_DATA_DIR`` or the user data dir."""
    folder = data_dir()
    return Path(folder) / DB_FILENAME


def utc_iso(moment: datetime | float | None = None) -> str:
    """ISO-8601 UTC text with milliseconds, e.g. ``2024-05-01T12:00:00.123+00:00``.

    Args:
        moment: A datetime (naive means local time), seconds since the epoch,
            or ``None`` for now.
    """
    if moment is None:
        value = datetime.now(timezone.utc)
    elif isinstance(moment, datetime):
        value = moment.astimezone(timezone.utc)
    else:
        value = datetime.fromtimestamp(moment, timezone.utc)
    return value.isoformat(timespec="milliseconds")


class ResultStore:
    """Decisions in an SQLite database, and NG images in a folder beside it.

    One connection shared under a lock, so the store may be used from any
    thread (normally the inspection worker's).

    Args:
        path: The database file; created with its folder if missing.
        images_dir: Where :meth:`save_ng_image` writes; default ``ng_images``
            beside the database.
        synchronous: SQLite ``synchronous`` level. ``"NORMAL"`` (default) loses
            nothing when the process is killed; ``"FULL"`` also survives power loss
            at the cost of a disk flush per decision.
        station: The name stored with each decision (default
            :func:`~inspector.storage.stores.default_station`: ``$INSPECTOR_STATION`` or the host name).

    Raises:
        ResultStoreError: if the file is not a usable results database.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        images_dir: str | os.PathLike | None = None,
        synchronous: str = "NORMAL",
        station: str | None = None,
    ) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"unknown synchronous level {synchronous!r}")
        self.path = Path(path)
        self.images_dir = Path(images_dir) if images_dir else self.path.parent / "ng_images"
        self.read_only = False
        self.station = station or default_station()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
        except sqlite3.Error as exc:
            raise ResultStoreError(f"{self.path}: cannot open results database ({exc})") from exc
        self._conn.row_factory = sqlite3.Row
        try:
            self._setup(synchronous.upper())
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise ResultStoreError(f"{self.path}: not a usable results database ({exc})") from exc
        except ResultStoreError:
            self._conn.close()
            raise

    @classmethod
    def open_read_only(cls, path: str | os.PathLike, timeout: float = 5.0) -> ResultStore:
        """Open an existing database for reading only: nothing in it or beside it is changed.

        SQLite opens the file with ``mode=ro``: no schema is written, the journal mode
        is not switched, a 0-byte file stays 0 bytes. A database written by a newer
        Inspector, an empty file, a file that is not an SQLite database and one that
        stays locked for ``timeout`` seconds raise :class:`ResultStoreError` (with a
        one-line message); a schema-1 database is read as it is. A read-only database
        in WAL mode whose folder cannot be written is read as immutable when no
        ``-wal`` file holds decisions not yet checkpointed.

        Args:
            path: The database file.
            timeout: Seconds to wait for another process's lock.

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            IsADirectoryError: if it is a folder.
            ResultStoreError: if it cannot be read as a results database.
        """
        path = Path(path)
        store = cls.__new__(cls)
        store.path, store.images_dir, store.read_only = path, path.parent / "ng_images", True
        store.station = default_station()
        store._lock = threading.Lock()
        store._conn = open_results_read_only(path, timeout)
        return store

    def _setup(self, synchronous: str) -> None:
        migrate(self._conn, self.path, synchronous)

    # -- writing -------------------------------------------------------------

    def record(
        self,
        result: InspectionResult,
        image_path: str | os.PathLike | None = None,
        overlay_path: str | os.PathLike | None = None,
        uid: str | None = None,
        content_hash: str | None = None,
        recorded_at: str | None = None,
        recipe: str | None = None,
    ) -> int:
        """Store one decision and commit it.

        Args:
            result: The decision.
            image_path: The saved copy of the frame (see :meth:`save_ng_image`).
            overlay_path: The saved overlay, if any.
            uid: A unique id of this decision. A second call with the same id stores
                nothing and returns the first row's id (a journal replay is idempotent).
            content_hash: Hash of the inspected file's bytes, for resuming by content.
            recorded_at: When the decision was made (ISO text, see :func:`utc_iso`),
                if not now (a decision replayed from a journal keeps its time).
            recipe: The recipe the decision was made under (``None``: no recipe).

        Returns:
            The row id.
        """
        frame = result.frame
        return self._insert(
            time=recorded_at or utc_iso(),
            frame_time=utc_iso(frame.timestamp),
            source=frame.source,
            frame_id=frame.frame_id,
            path=frame.path,
            raw_score=float(result.raw_score),
            score=float(result.score),
            threshold=float(result.threshold),
            verdict=result.verdict,
            model_hash=result.model_hash,
            latency_ms=float(result.latency_ms),
            image_path=_text(image_path),
            overlay_path=_text(overlay_path),
            uid=uid,
            content_hash=content_hash,
            recipe=recipe,
        )

    def record_error(
        self,
        source: str,
        message: str,
        path: str | os.PathLike | None = None,
        frame_id: int | None = None,
        model_hash: str | None = None,
        uid: str | None = None,
        content_hash: str | None = None,
        recorded_at: str | None = None,
        recipe: str | None = None,
    ) -> int:
        """Store a frame that could not be inspected (e.g. a corrupt file), verdict ``"ERROR"``.

        Such rows count as done for :meth:`done_paths`, so a resumed batch does
        not stumble over the same file again.

        Args:
            uid, content_hash, recorded_at, recipe: As for :meth:`record`.

        Returns:
            The row id.
        """
        return self._insert(
            time=recorded_at or utc_iso(),
            source=source,
            frame_id=frame_id,
            path=_text(path),
            verdict=ERROR_VERDICT,
            model_hash=model_hash,
            error=message,
            uid=uid,
            content_hash=content_hash,
            recipe=recipe,
        )

    def _insert(self, **values: Any) -> int:
        values["station"] = self.station
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._lock, self._conn:
            uid = values.get("uid")
            if uid is not None:
                row = self._conn.execute("SELECT id FROM decisions WHERE uid = ?", (uid,)).fetchone()
                if row is not None:
                    return int(row[0])
            cursor = self._conn.execute(
                f"INSERT INTO decisions ({columns}) VALUES ({marks})", tuple(values.values())
            )
            return int(cursor.lastrowid)

    def record_audit(self, action: str, old: Any = None, new: Any = None, old_model_hash: str | None = None,
                     new_model_hash: str | None = None, detail: Any = None, user: str | None = None) -> int:
        """Record one change in the audit trail (see :mod:`inspector.storage.audit`); returns its id.

        Args:
            action: What changed, e.g. ``"model_swap"``, ``"calibration"``, ``"threshold"``,
                ``"feedback"``, ``"refit"``.
            old, new: The value before and after (text, or anything JSON can hold).
            old_model_hash, new_model_hash: The models before and after.
            detail: Free text or a JSON-able value (a file, a reason, counts).
            user: Who; default the operating-system user.
        """
        values = audit_values(action, old, new, old_model_hash, new_model_hash, detail, user, time=utc_iso())
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._lock, self._conn:
            cursor = self._conn.execute(f"INSERT INTO audit ({columns}) VALUES ({marks})", tuple(values.values()))
            return int(cursor.lastrowid)

    def query_audit(self, since: datetime | None = None, action: str | None = None,
                    limit: int | None = 1000) -> list[dict[str, Any]]:
        """Audit entries, newest first (none for a database older than the audit trail)."""
        sql, params = audit_query(None if since is None else utc_iso(since), action, limit, "?")
        with self._lock:
            has_table = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").fetchone()
            if not has_table:
                return []
            try:
                rows = self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise ResultStoreError(f"{self.path}: {read_problem(exc)}") from exc
        return [dict(row) for row in rows]

    def has_uid(self, uid: str) -> bool:
        """Whether a decision with this unique id is stored."""
        with self._lock:
            return self._conn.execute("SELECT 1 FROM decisions WHERE uid = ?", (uid,)).fetchone() is not None

    def save_ng_image(
        self, result: InspectionResult, overlay: np.ndarray | None = None
    ) -> tuple[str, str | None]:
        """Save the frame (and the overlay, if given) as PNG under :attr:`images_dir`.

        Files go to ``images_dir/YYYY-MM-DD/`` (UTC date) with names made of
        the time, source, frame id and, for files, the original name. Whatever
        result is passed is saved; choosing NG frames is the caller's job.

        Args:
            result: The decision whose frame is saved.
            overlay: An ``HxWx3`` uint8 RGB rendering of the heatmap over the frame.

        Returns:
            ``(image_path, overlay_path)``; ``overlay_path`` is ``None`` without an overlay.
        """
        return write_ng_images(self.images_dir, result, overlay)

    def attach_overlay(self, row_id: int, overlay: np.ndarray) -> str:
        """Save an overlay made after the decision was recorded, and note it in that row.

        The file is ``<image stem>_overlay.png`` beside the row's saved image,
        or ``row<ID>_overlay.png`` under :attr:`images_dir` when none was saved.

        Args:
            row_id: The id :meth:`record` returned.
            overlay: ``HxWx3`` uint8 RGB.

        Returns:
            The overlay path.

        Raises:
            KeyError: if there is no such row.
        """
        with self._lock:
            row = self._conn.execute(
                "SELECT image_path FROM decisions WHERE id = ?", (int(row_id),)
            ).fetchone()
        if row is None:
            raise KeyError(f"no decision with id {row_id}")
        overlay_path = overlay_path_for(row["image_path"], row_id, self.images_dir)
        write_image(overlay_path, overlay)
        with self._lock, self._conn:
            self._conn.execute(
                "UPDATE decisions SET overlay_path = ? WHERE id = ?", (str(overlay_path), int(row_id))
            )
        return str(overlay_path)

    # -- reading -------------------------------------------------------------

    def query(
        self,
        since: datetime | None = None,
        source: str | None = None,
        limit: int | None = 1000,
        verdict: str | None = None,
        station: str | None = None,
        model_hash: str | None = None,
        recipe: str | None = None,
    ) -> list[dict[str, Any]]:
        """Recorded decisions, newest first.

        Args:
            since: Only decisions recorded at or after this moment (naive = local time).
            source: Only this source description, e.g. ``"folder:/data/lot7"``.
            limit: At most this many rows; ``None`` for all.
            verdict: Only ``"OK"``, ``"NG"`` or ``"ERROR"``.
            station: Only decisions of this station (schema 4 and later).
            model_hash: Only decisions by this model: the full hash or its first characters.
            recipe: Only decisions made under this recipe (schema 5 and later).

        Returns:
            One dict per row with the table's columns as keys.
        """
        clauses, params = [], []
        if recipe is not None:
            with self._lock:
                try:
                    columns = {row[1] for row in self._conn.execute("PRAGMA table_info(decisions)")}
                except sqlite3.DatabaseError as exc:
                    raise ResultStoreError(f"{self.path}: {read_problem(exc)}") from exc
            if "recipe" not in columns:  # a file older than schema 5 opened read-only: no row has a recipe
                return []
            clauses.append("recipe = ?")
            params.append(recipe)
        if station is not None:
            clauses.append("station = ?")
            params.append(station)
        if model_hash is not None:
            clauses.append("substr(model_hash, 1, ?) = ?")
            params.extend([len(model_hash), model_hash])
        if since is not None:
            clauses.append("time >= ?")
            params.append(utc_iso(since))
        if source is not None:
            clauses.append("source = ?")
            params.append(source)
        if verdict is not None:
            clauses.append("verdict = ?")
            params.append(verdict)
        sql = "SELECT * FROM decisions"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._lock:
            try:
                rows = self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise ResultStoreError(f"{self.path}: {read_problem(exc)}") from exc
        return [dict(row) for row in rows]

    def latest_rows(self, source: str, model_hash: str) -> dict[str, dict[str, Any]]:
        """The newest row of each file of ``source`` decided by ``model_hash``, for resuming by content.

        A batch resumed with these rows treats a file as done only when the row is OK
        or NG and its ``content_hash`` equals the file's current :func:`file_digest`
        (see :class:`~inspector.workers.batch_worker.BatchWorker`).

        Returns:
            ``{path: row}``, rows as :meth:`query` gives them.
        """
        sql = ("SELECT * FROM decisions WHERE id IN (SELECT MAX(id) FROM decisions "
               "WHERE source = ? AND model_hash = ? AND path IS NOT NULL GROUP BY path)")
        with self._lock:
            try:
                rows = self._conn.execute(sql, (source, model_hash)).fetchall()
            except sqlite3.DatabaseError as exc:
                raise ResultStoreError(f"{self.path}: {read_problem(exc)}") from exc
        return {row["path"]: dict(row) for row in rows}

    def done_paths(self, source: str, include_errors: bool = True) -> set[str]:
        """File paths of ``source`` that already have a row, for resuming a batch.

        Args:
            source: The source description the batch ran under.
            include_errors: Count files recorded with :meth:`record_error` as done.
        """
        sql = "SELECT DISTINCT path FROM decisions WHERE source = ? AND path IS NOT NULL"
        params: list[Any] = [source]
        if not include_errors:
            sql += " AND verdict != ?"
            params.append(ERROR_VERDICT)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return {row[0] for row in rows}

    def count(self, source: str | None = None) -> int:
        """Number of recorded rows, for one source or all."""
        sql, params = "SELECT COUNT(*) FROM decisions", []
        if source is not None:
            sql += " WHERE source = ?"
            params.append(source)
        with self._lock:
            return int(self._conn.execute(sql, params).fetchone()[0])

    def done_files(self, source: str, model_hash: str | None) -> dict[str, str | None]:
        """Files of ``source`` already decided by the model ``model_hash`` (errors included).

        For resuming a station run: the value is the content hash stored with the
        file's latest row (``None`` for rows recorded without one).
        """
        sql = ("SELECT path, content_hash FROM decisions WHERE source = ? AND model_hash IS ? "
               "AND path IS NOT NULL ORDER BY id")
        with self._lock:
            rows = self._conn.execute(sql, (source, model_hash)).fetchall()
        return {row[0]: row[1] for row in rows}

    def recorded_contents(self, model_hash: str, paths: list[str]) -> set[tuple[str, str]]:
        """``(path, content_hash)`` pairs of ``paths`` already decided by ``model_hash`` (errors included).

        For ``inspector score --db``: a file is done when this set holds its path with
        its current content hash. Asked in chunks, so millions of paths cost no more
        than memory for the answer.
        """
        found: set[tuple[str, str]] = set()
        for start in range(0, len(paths), 500):
            chunk = list(paths[start:start + 500])
            marks = ", ".join("?" for _ in chunk)
            sql = (f"SELECT path, content_hash FROM decisions WHERE model_hash = ? AND path IN ({marks}) "
                   "AND content_hash IS NOT NULL")
            with self._lock:
                try:
                    rows = self._conn.execute(sql, [model_hash, *chunk]).fetchall()
                except sqlite3.DatabaseError as exc:
                    raise ResultStoreError(f"{self.path}: {read_problem(exc)}") from exc
            found.update((row[0], row[1]) for row in rows)
        return found

    # -- life ------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (checkpointing the WAL). Safe to call twice."""
        with self._lock:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _text(value: str | os.PathLike | None) -> str | None:
    return None if value is None else os.fspath(value)
