"""A results database opened on first use, shared by the workers (the store is thread-safe).

The target is an SQLite file or a ``postgresql://`` URL (:func:`inspector.storage.stores.open_store`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 2.0
"""How long a write waits for another process's lock before the decision goes to the journal."""


class StoreHolder:
    """Opens a :class:`~inspector.storage.results_db.ResultStore` lazily, from any thread.

    Opening touches the disk, so it happens on the first worker that needs it,
    never on the GUI thread.

    A failed open is not cached: the next call tries again (a corrupt file
    replaced, a folder made writable). :meth:`reset` drops an open store so that
    the next call reopens it.

    Args:
        path: The database file or a ``postgresql://`` URL; ``None`` for ``default_db_path()``.
        busy_timeout_s: How long a write waits for a lock held by another process
            (PostgreSQL: how long connecting may take, at least a second).
        station: The station name stored with each decision (default: ``$INSPECTOR_STATION``
            or the host name).
    """

    def __init__(self, path: str | Path | None = None, busy_timeout_s: float = BUSY_TIMEOUT_S,
                 station: str | None = None) -> None:
        self._path = path
        self._station = station
        self._busy_ms = max(0, int(busy_timeout_s * 1000))
        self._lock = threading.Lock()
        self._store: Any = None
        self._closed = False

    def __call__(self) -> Any:
        """The store, opened on first call.

        Raises:
            RuntimeError: after :meth:`close`.
            inspector.storage.results_db.ResultStoreError: for an unusable database file.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the results database is closed")
            if self._store is None:
                from inspector.storage.results_db import ResultStore, default_db_path
                from inspector.storage.stores import is_url, open_store

                if is_url(self._path):
                    self._store = open_store(str(self._path), station=self._station,
                                             timeout=max(1.0, self._busy_ms / 1000.0))
                    return self._store

                path = Path(self._path or default_db_path())
                _fail_fast_if_locked(path, self._busy_ms / 1000.0)
                store = ResultStore(path, station=self._station)
                # The store's connection is ours to tune: a shorter wait keeps the detection going.
                store._conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
                self._store = store
            return self._store

    def reset(self) -> None:
        """Close the open store (if any) so that the next call opens the file again."""
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            try:
                store.close()
            except Exception:
                logger.exception("closing the results database failed")

    @property
    def path(self) -> Path:
        """Where the database is (or will be); for a PostgreSQL URL, a local name the journal is kept beside."""
        from inspector.storage.stores import is_url

        if is_url(self._path):
            from urllib.parse import urlsplit

            from inspector.core.paths import data_dir
            from inspector.storage.stores import slug

            parts = urlsplit(str(self._path))
            name = slug(f"{parts.hostname or 'local'}_{parts.port or 5432}_{parts.path.strip('/') or 'db'}")
            return data_dir() / "postgresql" / name
        if self._path:
            return Path(self._path)
        from inspector.storage.results_db import default_db_path

        return default_db_path()

    def close(self) -> None:
        """Close the store if it was opened; later calls raise."""
        with self._lock:
            self._closed = True
            store, self._store = self._store, None
        if store is not None:
            try:
                store.close()
            except Exception:
                logger.exception("closing the results database failed")


def _fail_fast_if_locked(path: Path, timeout: float) -> None:
    """Raise ``sqlite3.OperationalError`` at once if another process holds the write lock.

    Opening a store writes its schema and would wait the store's own (long) timeout;
    a station opening a locked database journals instead. Other problems are left
    to the store, whose messages say more.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        connection = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except sqlite3.Error:
        return
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise
    except sqlite3.Error:
        pass
    finally:
        connection.close()
