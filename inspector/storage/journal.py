"""The decision journal: where decisions wait while the results database cannot be written.

When :class:`~inspector.storage.results_db.ResultStore` fails (locked past its
timeout, read-only, corrupt, disk error), each decision becomes one JSON line
in ``decisions.jsonl`` inside a journal folder, written, flushed and fsync'd
before the call returns; an NG frame goes beside it as ``images/<uid>.png``,
written to a temporary name, fsync'd and renamed. Each line carries the format
version (``"v"``) and the decision's unique id (``"uid"``).

:meth:`DecisionJournal.replay` writes the entries into a working store in order
and then trims them. Replay is idempotent: a decision whose uid the store already
has is not written again, so a replay that is interrupted (killed, store failing
again) and repeated stores every decision exactly once, each with its own time.
A torn last line (the process killed while writing it) is skipped with a warning.

The journal folder is ``<database file>.journal`` beside the database, or, where
that folder cannot be written, ``journals/<name>-<hash of the database path>`` in
the user data folder (``$INSPECTOR_DATA_DIR`` or platformdirs); see
:func:`journal_folders`. No Qt here; one process writes a journal at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np

from inspector.core.durable import ends_with_newline, fsync_folder, write_atomically
from inspector.core.paths import data_dir

logger = logging.getLogger(__name__)

JOURNAL_VERSION = 1
JOURNAL_FILE = "decisions.jsonl"
IMAGES_DIR = "images"
RESULT, ERROR = "result", "error"


class JournalError(OSError):
    """The journal folder cannot be written either."""


def new_uid() -> str:
    """A fresh unique id for one decision."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class JournalEntry:
    """One decision as journalled: every field ``ResultStore.record`` / ``record_error`` stores.

    Attributes:
        kind: ``"result"`` (a decided frame) or ``"error"`` (a frame that could not be inspected).
        uid: The decision's unique id (the store keeps it, so a replay stores it once).
        recorded_at: When the decision was made (ISO UTC text).
        source, frame_id, path, model_hash, content_hash: As in the results database.
        frame_time: The frame's acquisition time (seconds since the epoch); results only.
        raw_score, score, threshold, anomalous, latency_ms: The decision; results only.
        image: File name of the NG frame under ``images/``, if one was kept.
        error: Why the frame could not be inspected; errors only.
        recipe: The recipe the decision was made under (``None``: none; lines written
            before the field existed have no ``recipe`` and replay with ``None``).
    """

    kind: str
    uid: str
    recorded_at: str
    source: str
    frame_id: int | None = None
    path: str | None = None
    model_hash: str | None = None
    content_hash: str | None = None
    frame_time: float | None = None
    raw_score: float | None = None
    score: float | None = None
    threshold: float | None = None
    anomalous: bool | None = None
    latency_ms: float | None = None
    image: str | None = None
    error: str | None = None
    recipe: str | None = None

    def to_line(self) -> str:
        """The JSON line (with the format version), newline included."""
        values = {"v": JOURNAL_VERSION, **asdict(self)}
        return json.dumps(values, separators=(",", ":"), allow_nan=False) + "\n"

    @classmethod
    def from_line(cls, line: str) -> JournalEntry:
        """Parse one line.

        Raises:
            ValueError: for a line that is not a complete entry of a known version.
        """
        values = json.loads(line)
        if not isinstance(values, dict):
            raise ValueError("not a JSON object")
        version = values.pop("v", None)
        if version != JOURNAL_VERSION:
            raise ValueError(f"journal format version {version!r}, expected {JOURNAL_VERSION}")
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}")
        entry = cls(**values)
        if entry.kind not in (RESULT, ERROR) or not entry.uid or not entry.source:
            raise ValueError("incomplete entry")
        return entry


def journal_folders(db_path: str | os.PathLike) -> list[Path]:
    """Where the journal of ``db_path`` may be, in order of preference.

    The first is ``<db_path>.journal`` beside the database; the second is in the
    user data folder, named after the database so that two databases never share one.
    """
    db = Path(os.path.abspath(os.fspath(db_path)))
    data = data_dir()
    digest = hashlib.sha256(str(db).encode()).hexdigest()[:16]
    return [db.parent / f"{db.name}.journal", data / "journals" / f"{db.name}-{digest}"]


class DecisionJournal:
    """An append-only journal folder of decisions (see the module docstring).

    Args:
        folder: The journal folder (created on the first write).
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()

    @property
    def file(self) -> Path:
        """The JSON-lines file."""
        return self.folder / JOURNAL_FILE

    # -- writing ---------------------------------------------------------------

    def append(self, entry: JournalEntry, image: np.ndarray | None = None) -> JournalEntry:
        """Write one decision (and its RGB frame as PNG) durably; returns the entry as written.

        Raises:
            JournalError: if the folder or file cannot be written.
        """
        with self._lock:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                if image is not None:
                    name = f"{entry.uid}.png"
                    write_atomically(self.folder / IMAGES_DIR / name, _encode_png(image))
                    entry = replace(entry, image=name)
                line = entry.to_line().encode("utf-8")
                new_file = not self.file.exists()
                with open(self.file, "ab") as handle:
                    if handle.tell() > 0 and not ends_with_newline(self.file):
                        handle.write(b"\n")  # a torn line from a killed writer stays on its own
                    handle.write(line)
                    handle.flush()
                    os.fsync(handle.fileno())
                if new_file:
                    fsync_folder(self.folder)
            except OSError as exc:
                raise JournalError(f"cannot write the decision journal in {self.folder}: {exc}") from exc
        return entry

    # -- reading ---------------------------------------------------------------

    def entries(self) -> list[JournalEntry]:
        """The journalled decisions in order; unreadable (torn) lines are skipped with a warning."""
        with self._lock:
            return self._read()[0]

    def pending(self) -> int:
        """How many decisions wait in the journal."""
        return len(self.entries())

    def image(self, entry: JournalEntry) -> np.ndarray | None:
        """The entry's NG frame as RGB, or ``None`` (none kept, or the file is unreadable)."""
        if not entry.image:
            return None
        try:
            data = np.fromfile(self.folder / IMAGES_DIR / entry.image, dtype=np.uint8)
        except OSError:
            data = np.zeros(0, np.uint8)
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if decoded is None:
            logger.warning("journal %s: image %s of decision %s is unreadable", self.folder, entry.image, entry.uid)
            return None
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)

    def _read(self) -> tuple[list[JournalEntry], int]:
        """Entries and the number of torn lines skipped."""
        try:
            raw = self.file.read_bytes()
        except FileNotFoundError:
            return [], 0
        entries, torn = [], 0
        for number, line in enumerate(raw.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                entries.append(JournalEntry.from_line(line.decode("utf-8")))
            except (ValueError, TypeError, UnicodeDecodeError) as exc:
                torn += 1
                logger.warning("journal %s: line %d skipped (torn or unreadable: %s)", self.file, number, exc)
        return entries, torn

    # -- replay ------------------------------------------------------------------

    def replay(self, store: Any) -> int:
        """Write every journalled decision into ``store`` in order, then trim the journal.

        A decision the store already has (same uid) is not written again. If the
        store fails part-way, the decisions written so far are trimmed, the rest
        stay, and the error is raised.

        Args:
            store: A :class:`~inspector.storage.results_db.ResultStore`.

        Returns:
            How many decisions were newly stored.
        """
        with self._lock:
            entries, _ = self._read()
            stored, done = 0, 0
            try:
                for entry in entries:
                    if not store.has_uid(entry.uid):
                        _store_entry(store, entry, self.image(entry) if entry.image else None)
                        stored += 1
                    done += 1
            finally:
                if done:
                    self._trim(entries[:done], entries[done:])
            return stored

    def _trim(self, replayed: Iterable[JournalEntry], remaining: list[JournalEntry]) -> None:
        """Keep only ``remaining`` (rewritten atomically) and delete the replayed entries' images."""
        if remaining:
            write_atomically(self.file, "".join(e.to_line() for e in remaining).encode("utf-8"))
        else:
            self.file.unlink(missing_ok=True)
        for entry in replayed:
            if entry.image:
                (self.folder / IMAGES_DIR / entry.image).unlink(missing_ok=True)
        if not remaining:
            for leftover in (self.folder / IMAGES_DIR).glob("*.tmp"):
                leftover.unlink(missing_ok=True)
            for empty in (self.folder / IMAGES_DIR, self.folder):
                try:
                    empty.rmdir()
                except OSError:
                    pass


def replay_journals(db_path: str | os.PathLike) -> int:
    """Replay every journal of ``db_path`` into it (headless; no station needed).

    Returns:
        How many decisions were newly stored.

    Raises:
        inspector.storage.results_db.ResultStoreError, sqlite3.Error: if the database
            still cannot be written (the journal is kept).
    """
    from inspector.storage.results_db import ResultStore

    folders = [f for f in journal_folders(db_path) if (f / JOURNAL_FILE).is_file()]
    if not folders:
        return 0
    with ResultStore(db_path) as store:
        return sum(DecisionJournal(folder).replay(store) for folder in folders)


def _store_entry(store: Any, entry: JournalEntry, image: np.ndarray | None) -> None:
    if entry.kind == ERROR:
        store.record_error(entry.source, entry.error or "", entry.path, entry.frame_id, entry.model_hash,
                           uid=entry.uid, content_hash=entry.content_hash, recorded_at=entry.recorded_at,
                           recipe=entry.recipe)
        return
    from inspector.core.records import Frame, InspectionResult

    frame = Frame(image=image if image is not None else np.zeros((1, 1, 3), np.uint8), source=entry.source,
                  frame_id=int(entry.frame_id or 0), path=entry.path, timestamp=float(entry.frame_time or 0.0))
    result = InspectionResult(frame, float(entry.raw_score), float(entry.score), float(entry.threshold),
                              bool(entry.anomalous), entry.model_hash or "", float(entry.latency_ms or 0.0))
    image_path = store.save_ng_image(result)[0] if image is not None else None
    store.record(result, image_path=image_path, uid=entry.uid, content_hash=entry.content_hash,
                 recorded_at=entry.recorded_at, recipe=entry.recipe)


def _encode_png(image: np.ndarray) -> bytes:
    array = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise OSError("could not encode the frame as PNG")
    return encoded.tobytes()
