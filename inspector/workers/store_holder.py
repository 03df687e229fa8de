"""A results database opened on first use, shared by the workers (the store is thread-safe)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class StoreHolder:
    """Opens a :class:`~inspector.storage.results_db.ResultStore` lazily, from any thread.

    Opening touches the disk, so it happens on the first worker that needs it,
    never on the GUI thread.

    Args:
        path: The database file; ``None`` for ``default_db_path()``.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self._path = path
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

                self._store = ResultStore(self._path or default_db_path())
            return self._store

    @property
    def path(self) -> Path:
        """Where the database is (or will be)."""
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
