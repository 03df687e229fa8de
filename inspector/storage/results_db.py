"""The results database: one SQLite row per decision, NG images as PNG files beside it.

The database runs in WAL mode and every :meth:`ResultStore.record` commits at
once, so a decision the operator has seen survives the process being killed.
Readers in other processes (the CLI, a second window) do not block the writer.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.imageio import write_image
from inspector.core.paths import data_dir
from inspector.core.records import InspectionResult
from inspector.storage.audit import AUDIT_SCHEMA, audit_query, audit_values
from inspector.storage.stores import default_station, overlay_path_for, write_ng_images

SCHEMA_VERSION = 5
DB_FILENAME = "results.sqlite3"
ERROR_VERDICT = "ERROR"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    time         TEXT NOT NULL,
    frame_time   TEXT,
    source       TEXT NOT NULL,
    frame_id     INTEGER,
    path         TEXT,
    raw_score    REAL,
    score        REAL,
    threshold    REAL,
    verdict      TEXT NOT NULL,
    model_hash   TEXT,
    latency_ms   REAL,
    image_path   TEXT,
    overlay_path TEXT,
    error        TEXT,
    uid          TEXT,
    content_hash TEXT,
    station      TEXT,
    recipe       TEXT
);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions (time);
CREATE INDEX IF NOT EXISTS decisions_source_path ON decisions (source, path);
"""

# Schema 2 adds a decision's unique id (a journal replays a decision at most once)
# and the content hash of the inspected file (resume keyed on content, not on the name).
# Schema 3 adds the audit trail (its own table, created with the rest: nothing to alter).
# Schema 4 adds the station that decided (host name or --station; NULL for older rows)
# and an index for resuming by model and file (inspector score --db).
# Schema 5 adds the recipe the decision was made under (NULL without a recipe and for older rows).
# The PostgreSQL backend (postgres_store.py) has the same steps.
_UPGRADES = {
    2: """
ALTER TABLE decisions ADD COLUMN uid TEXT;
ALTER TABLE decisions ADD COLUMN content_hash TEXT;
""",
    3: "",
    4: """
ALTER TABLE decisions ADD COLUMN station TEXT;
""",
    5: """
ALTER TABLE decisions ADD COLUMN recipe TEXT;
""",
}
_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS decisions_uid ON decisions (uid) WHERE uid IS NOT NULL;
CREATE INDEX IF NOT EXISTS decisions_model_path ON decisions (model_hash, path);
"""


class ResultStoreError(RuntimeError):
    """The database file cannot be used (corrupt, not a database, or from a newer version)."""


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
        if not path.exists():
            raise FileNotFoundError(f"{path}: no results database (the station creates it on its first decision)")
        if path.is_dir():
            raise IsADirectoryError(f"{path}: is a folder, not a results database")
        if path.stat().st_size == 0:
            raise ResultStoreError(f"{path}: empty file (0 bytes), not a results database")
        store = cls.__new__(cls)
        store.path, store.images_dir, store.read_only = path, path.parent / "ng_images", True
        store.station = default_station()
        store._lock = threading.Lock()
        store._conn = _connect_read_only(path, timeout)
        store._conn.row_factory = sqlite3.Row
        try:
            version = store._conn.execute("PRAGMA user_version").fetchone()[0]
            has_table = store._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'decisions'").fetchone()
        except sqlite3.DatabaseError as exc:
            store._conn.close()
            raise ResultStoreError(f"{path}: {_read_problem(exc)}") from exc
        if version > SCHEMA_VERSION:
            store._conn.close()
            raise ResultStoreError(f"{path}: written by a newer Inspector (schema {version} > {SCHEMA_VERSION}); "
                                   f"read it with that version")
        if not has_table:
            store._conn.close()
            raise ResultStoreError(f"{path}: an SQLite database without a decisions table, not a results database")
        return store

    def _setup(self, synchronous: str) -> None:
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise ResultStoreError(f"{self.path}: WAL mode not available (got {mode})")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ResultStoreError(
                f"{self.path}: written by a newer Inspector (schema {version} > {SCHEMA_VERSION})"
            )
        with self._conn:
            has_table = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'decisions'"
            ).fetchone()
            if has_table and version < SCHEMA_VERSION:
                columns = {row[1] for row in self._conn.execute("PRAGMA table_info(decisions)")}
                for step in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
                    for statement in filter(None, (s.strip() for s in _UPGRADES[step].split(";"))):
                        added = statement.split()[-2] if "ADD COLUMN" in statement else None
                        if added not in columns:  # a column already there (a half-done upgrade) stays
                            self._conn.execute(statement)
            self._conn.executescript(_SCHEMA + _INDEXES + AUDIT_SCHEMA)
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

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
                raise ResultStoreError(f"{self.path}: {_read_problem(exc)}") from exc
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
                    raise ResultStoreError(f"{self.path}: {_read_problem(exc)}") from exc
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
                raise ResultStoreError(f"{self.path}: {_read_problem(exc)}") from exc
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
                raise ResultStoreError(f"{self.path}: {_read_problem(exc)}") from exc
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
                    raise ResultStoreError(f"{self.path}: {_read_problem(exc)}") from exc
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


def file_digest(path: str | os.PathLike) -> str | None:
    """The sha256 of a file's bytes (hex), or ``None`` when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """A ``mode=ro`` connection; ``immutable=1`` when SQLite cannot share a read-only WAL file."""
    uri = path.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout, check_same_thread=False)
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        wal = Path(f"{path}-wal")
        unwritable = not os.access(path.parent, os.W_OK) or not os.access(path, os.W_OK)
        if "unable to open" not in str(exc) or not unwritable or (wal.exists() and wal.stat().st_size):
            raise ResultStoreError(f"{path}: {_read_problem(exc)}") from exc
    except sqlite3.DatabaseError as exc:
        raise ResultStoreError(f"{path}: {_read_problem(exc)}") from exc
    try:
        return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, timeout=timeout, check_same_thread=False)
    except sqlite3.Error as exc:
        raise ResultStoreError(f"{path}: {_read_problem(exc)}") from exc


def _read_problem(exc: sqlite3.Error) -> str:
    """Why a database could not be read, in words."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"database is locked by another process ({text}); try again when it is released"
    if "not a database" in text or "malformed" in text:
        return f"not a usable results database: corrupt or not SQLite ({text})"
    if "unable to open" in text:
        return f"cannot open the database for reading ({text}); check the file's and folder's permissions"
    return f"cannot read the results database ({text})"


def _text(value: str | os.PathLike | None) -> str | None:
    return None if value is None else os.fspath(value)
