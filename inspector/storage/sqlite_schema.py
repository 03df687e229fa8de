"""The SQLite results database's schema: tables, the step-by-step upgrades, opening read-only.

Kept apart from :mod:`inspector.storage.results_db` (what the store does with it). The
PostgreSQL backend (:mod:`inspector.storage.postgres_store`) has the same steps.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from inspector.storage.audit import AUDIT_SCHEMA

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


def migrate(conn: sqlite3.Connection, path: Path, synchronous: str) -> None:
    """Switch to WAL, set ``synchronous`` and bring the schema to :data:`SCHEMA_VERSION`.

    Raises:
        ResultStoreError: without WAL, or for a database written by a newer Inspector.
        sqlite3.DatabaseError: for a file that is not a database.
    """
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise ResultStoreError(f"{path}: WAL mode not available (got {mode})")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ResultStoreError(
            f"{path}: written by a newer Inspector (schema {version} > {SCHEMA_VERSION})"
        )
    with conn:
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'decisions'"
        ).fetchone()
        if has_table and version < SCHEMA_VERSION:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(decisions)")}
            for step in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
                for statement in filter(None, (s.strip() for s in _UPGRADES[step].split(";"))):
                    added = statement.split()[-2] if "ADD COLUMN" in statement else None
                    if added not in columns:  # a column already there (a half-done upgrade) stays
                        conn.execute(statement)
        conn.executescript(_SCHEMA + _INDEXES + AUDIT_SCHEMA)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
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
            raise ResultStoreError(f"{path}: {read_problem(exc)}") from exc
    except sqlite3.DatabaseError as exc:
        raise ResultStoreError(f"{path}: {read_problem(exc)}") from exc
    try:
        return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, timeout=timeout, check_same_thread=False)
    except sqlite3.Error as exc:
        raise ResultStoreError(f"{path}: {read_problem(exc)}") from exc


def read_problem(exc: sqlite3.Error) -> str:
    """Why a database could not be read, in words."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"database is locked by another process ({text}); try again when it is released"
    if "not a database" in text or "malformed" in text:
        return f"not a usable results database: corrupt or not SQLite ({text})"
    if "unable to open" in text:
        return f"cannot open the database for reading ({text}); check the file's and folder's permissions"
    return f"cannot read the results database ({text})"


def open_results_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """A read-only connection (rows as :class:`sqlite3.Row`) to an existing results database.

    Raises:
        FileNotFoundError, IsADirectoryError: for a missing file or a folder.
        ResultStoreError: for an empty file, a file that is not a results database, one
            locked for ``timeout`` seconds, or one written by a newer Inspector.
    """
    if not path.exists():
        raise FileNotFoundError(f"{path}: no results database (the station creates it on its first decision)")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not a results database")
    if path.stat().st_size == 0:
        raise ResultStoreError(f"{path}: empty file (0 bytes), not a results database")
    conn = connect_read_only(path, timeout)
    conn.row_factory = sqlite3.Row
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'decisions'").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ResultStoreError(f"{path}: {read_problem(exc)}") from exc
    if version > SCHEMA_VERSION:
        conn.close()
        raise ResultStoreError(f"{path}: written by a newer Inspector (schema {version} > {SCHEMA_VERSION}); "
                               f"read it with that version")
    if not has_table:
        conn.close()
        raise ResultStoreError(f"{path}: an SQLite database without a decisions table, not a results database")
    return conn
