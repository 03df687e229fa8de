"""Records the station's decisions: into the results database, or into the journal while it fails.

:class:`DecisionRecorder` is used by the inspection worker (one thread). Each
decision gets a unique id. While the store works and the journal is empty, a
decision goes straight to the store. When a write fails (or the store cannot be
opened), the decision and its NG frame go to the
:class:`~inspector.storage.journal.DecisionJournal`, and so does every later one
until the journal has been replayed, so the database keeps the order in which
decisions were made. :meth:`DecisionRecorder.flush` retries the store with a
bounded back-off (1 s doubling to :data:`RETRY_MAX_S`) and replays the journal;
``flush(force=True)`` tries at once (start-up, shutdown, ``--quit-after``).

No Qt here: the worker polls :meth:`flush` from a timer and turns
:attr:`DecisionRecorder.state` into a queued signal.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from inspector.core.records import InspectionResult
from inspector.storage.journal import (
    ERROR,
    RESULT,
    DecisionJournal,
    JournalEntry,
    JournalError,
    journal_folders,
    new_uid,
)

logger = logging.getLogger(__name__)

RETRY_INITIAL_S = 1.0
RETRY_MAX_S = 8.0


@dataclass(frozen=True)
class RecorderState:
    """Where the decisions stand.

    Attributes:
        waiting: Decisions only in the journal (or, if it cannot be written, only in memory).
        error: Why the store could not be written last time (empty when healthy).
        journal_folder: The journal being written.
        in_memory: Decisions neither the store nor the journal could take.
    """

    waiting: int = 0
    error: str = ""
    journal_folder: str = ""
    in_memory: int = 0

    @property
    def healthy(self) -> bool:
        """Everything reached the database."""
        return self.waiting == 0 and self.in_memory == 0 and not self.error

    def describe(self) -> str:
        """One line for the status bar (empty when healthy)."""
        if self.healthy:
            return ""
        reason = f" ({self.error})" if self.error else ""
        text = f"results database unavailable: {self.waiting} decisions waiting in the journal{reason}"
        if self.in_memory:
            text += f"; {self.in_memory} only in memory (the journal cannot be written either)"
        return text


def _entry_from_result(result: InspectionResult, uid: str, recorded_at: str,
                       content_hash: str | None, recipe: str | None = None) -> JournalEntry:
    frame = result.frame
    return JournalEntry(RESULT, uid, recorded_at, frame.source, frame.frame_id, frame.path, result.model_hash,
                        content_hash, float(frame.timestamp), float(result.raw_score), float(result.score),
                        float(result.threshold), bool(result.anomalous), float(result.latency_ms),
                        recipe=recipe)


class DecisionRecorder:
    """Durable recording of decisions (see the module docstring).

    Args:
        store_factory: Returns the ResultStore (e.g. a
            :class:`~inspector.workers.store_holder.StoreHolder`; retried when it raises).
        db_path: The database file, for the journal's place; default ``store_factory.path``.
        clock: Monotonic seconds (tests inject a fake).
    """

    def __init__(self, store_factory: Callable[[], Any], db_path: str | Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._factory = store_factory
        path = db_path or getattr(store_factory, "path", None)
        if path is None:
            from inspector.storage.results_db import default_db_path

            path = default_db_path()
        self.db_path = Path(path)
        self._folders = journal_folders(self.db_path)
        self._journal: DecisionJournal | None = None
        self._memory: list[tuple[JournalEntry, Any]] = []
        self._clock = clock
        self._lock = threading.RLock()
        self._error = ""
        self._waiting = 0
        self._delay = RETRY_INITIAL_S
        self._next_try = 0.0
        self._started = False
        self.last_uid: str | None = None
        """The unique id of the last decision :meth:`record` took (for listeners on the same thread)."""
        self.recipe: str | None = None
        """The recipe decisions are made under (stored in every row and journal line; ``None``: none).
        Set by whoever switches recipes (the window, ``inspector serve``)."""

    # -- recording ---------------------------------------------------------------------

    def record(self, result: InspectionResult, content_hash: str | None = None) -> tuple[int | None, str | None]:
        """Record one decision (and its NG frame).

        Returns:
            ``(row_id, image_path)`` when it reached the database, ``(None, None)`` when journalled.
        """
        from inspector.storage.results_db import utc_iso

        uid, recorded_at = new_uid(), utc_iso()
        self.last_uid = uid
        recipe = self.recipe
        with self._lock:
            if self._direct():
                image_path = None
                try:
                    store = self._factory()
                    image_path = store.save_ng_image(result)[0] if result.anomalous else None
                    row_id = store.record(result, image_path=image_path, uid=uid, content_hash=content_hash,
                                          recorded_at=recorded_at, recipe=recipe)
                    self._healthy()
                    return row_id, image_path
                except Exception as exc:  # noqa: BLE001 - any store failure sends the decision to the journal
                    self._failed(exc)
                    if image_path:  # the journal keeps the frame; the replay saves it again
                        Path(image_path).unlink(missing_ok=True)
            entry = _entry_from_result(result, uid, recorded_at, content_hash, recipe)
            self._to_journal(entry, result.frame.image if result.anomalous else None)
            return None, None

    def record_error(self, source: str, message: str, path: str | None = None, frame_id: int | None = None,
                     model_hash: str | None = None, content_hash: str | None = None) -> int | None:
        """Record a frame that could not be inspected; the row id, or ``None`` when journalled."""
        from inspector.storage.results_db import utc_iso

        uid, recorded_at = new_uid(), utc_iso()
        self.last_uid = uid
        recipe = self.recipe
        with self._lock:
            if self._direct():
                try:
                    row_id = self._factory().record_error(source, message, path, frame_id, model_hash, uid=uid,
                                                          content_hash=content_hash, recorded_at=recorded_at,
                                                          recipe=recipe)
                    self._healthy()
                    return row_id
                except Exception as exc:  # noqa: BLE001
                    self._failed(exc)
            self._to_journal(JournalEntry(ERROR, uid, recorded_at, source, frame_id, path, model_hash,
                                          content_hash, error=message, recipe=recipe), None)
            return None

    def done_files(self, source: str, model_hash: str | None) -> dict[str, str | None]:
        """Files of ``source`` decided by ``model_hash``: in the database and still in the journal.

        Raises:
            Exception: whatever the store raises when it cannot be read.
        """
        with self._lock:
            done = dict(self._factory().done_files(source, model_hash))
            for folder in self._folders:
                for entry in DecisionJournal(folder).entries():
                    if entry.source == source and entry.model_hash == model_hash and entry.path:
                        done[entry.path] = entry.content_hash
            for entry, _ in self._memory:
                if entry.source == source and entry.model_hash == model_hash and entry.path:
                    done[entry.path] = entry.content_hash
            return done

    # -- retrying ------------------------------------------------------------------------

    def flush(self, force: bool = False) -> RecorderState:
        """Replay the journal into the store if a retry is due (``force``: now).

        Never raises; the returned state says what is left.
        """
        with self._lock:
            self._start()
            if not (self._waiting or self._memory or self._error):
                return self.state
            if not force and self._clock() < self._next_try:
                return self.state
            try:
                store = self._factory()
                self._spill_memory()
                for folder in self._folders:
                    journal = self._journal if self._journal and self._journal.folder == folder else \
                        DecisionJournal(folder)
                    stored = journal.replay(store)
                    if stored:
                        logger.info("replayed %d journalled decisions from %s into %s", stored, folder,
                                    self.db_path)
            except Exception as exc:  # noqa: BLE001 - still failing: keep the journal, back off
                self._failed(exc)
            else:
                self._healthy()
            self._count()
            return self.state

    @property
    def state(self) -> RecorderState:
        """The current :class:`RecorderState`."""
        with self._lock:
            folder = str(self._journal.folder if self._journal else self._folders[0])
            return RecorderState(self._waiting, self._error, folder, len(self._memory))

    @property
    def journal_folder(self) -> Path:
        """The folder journalled decisions go to (the first writable candidate)."""
        with self._lock:
            return self._journal.folder if self._journal else self._folders[0]

    # -- helpers -------------------------------------------------------------------------

    def _start(self) -> None:
        """On first use: count what an earlier session left in the journals."""
        if not self._started:
            self._started = True
            self._count()
            if self._waiting:
                self._error = self._error or "decisions of an earlier session wait in the journal"

    def _direct(self) -> bool:
        """Whether a decision may go straight to the store (nothing waits before it)."""
        self._start()
        if self._waiting or self._memory:
            self.flush()
        return not (self._waiting or self._memory) and (not self._error or self._clock() >= self._next_try)

    def _healthy(self) -> None:
        self._error, self._delay = "", RETRY_INITIAL_S

    def _failed(self, exc: Exception) -> None:
        message = str(exc).strip() or type(exc).__name__
        if message != self._error:
            logger.warning("results database %s cannot be written: %s", self.db_path, message)
        self._error = message
        self._next_try = self._clock() + self._delay
        self._delay = min(self._delay * 2, RETRY_MAX_S)
        if isinstance(exc, sqlite3.DatabaseError) and "locked" not in message and "busy" not in message:
            reset = getattr(self._factory, "reset", None)
            if reset is not None:
                reset()  # reopen next time (a file replaced or repaired under us)

    def _to_journal(self, entry: JournalEntry, image: Any) -> None:
        if self._memory:
            self._spill_memory()
        if not self._memory:
            try:
                self._writable_journal().append(entry, image)
                self._waiting += 1
                return
            except JournalError as exc:
                logger.error("%s", exc)
        self._memory.append((entry, image))

    def _spill_memory(self) -> None:
        """Move decisions held in memory into the journal, oldest first (stops at the first failure)."""
        while self._memory:
            entry, image = self._memory[0]
            try:
                self._writable_journal().append(entry, image)
            except JournalError:
                return
            self._memory.pop(0)
            self._waiting += 1

    def _writable_journal(self) -> DecisionJournal:
        """The journal in the first candidate folder that can be written."""
        if self._journal is not None:
            return self._journal
        last: Exception | None = None
        for folder in self._folders:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                probe = folder / ".probe"
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as exc:
                last = exc
                continue
            self._journal = DecisionJournal(folder)
            return self._journal
        raise JournalError(f"no journal folder can be written ({last})")

    def _count(self) -> None:
        self._waiting = sum(DecisionJournal(folder).pending() for folder in self._folders
                            if (folder / "decisions.jsonl").is_file())
