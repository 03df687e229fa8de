"""The MQTT outbox: decisions wait here, on disk, until the broker acknowledged them.

Every message is one JSON line in ``outbox.jsonl`` (format version ``"v"``, the
message's unique id ``"uid"``, its topic and payload), appended with one
``write`` to a file opened ``O_APPEND``, so a line survives the process being
killed the moment :meth:`Outbox.append` returns; :meth:`Outbox.sync` fsyncs it
(the publisher thread does, before it publishes). An acknowledged message's uid
is appended to ``acked.txt``; a message is pending while its uid is not there.
When everything is acknowledged the file is truncated in place and the
acknowledgements dropped (removed on :meth:`Outbox.close`); when many acknowledged
lines pile up behind pending ones (a broker down for long), the pending ones are
rewritten atomically (temporary file, fsync, rename) and the acknowledgements dropped.
A crash between two of these steps can only make a message be delivered twice.

A torn last line (killed while writing) is skipped with a warning, as in
:mod:`inspector.storage.journal`. One process uses an outbox at a time: it holds an
exclusive ``flock`` on ``lock`` in the folder while the outbox is open, and a second
opener (a window and ``serve`` on the same database, say) gets an :class:`OSError`
at once instead of two writers interleaving. No Qt.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from inspector.core.durable import ends_with_newline, fsync_folder

logger = logging.getLogger(__name__)

OUTBOX_VERSION = 1
OUTBOX_FILE = "outbox.jsonl"
ACKED_FILE = "acked.txt"
LOCK_FILE = "lock"
COMPACT_AFTER = 2000
"""Acknowledged lines kept before the file is rewritten with only the pending ones."""


@dataclass(frozen=True)
class OutboxEntry:
    """One message waiting for its PUBACK."""

    uid: str
    topic: str
    payload: str

    def to_line(self) -> bytes:
        """The JSON line, newline included."""
        values = {"v": OUTBOX_VERSION, "uid": self.uid, "topic": self.topic, "payload": self.payload}
        return (json.dumps(values, separators=(",", ":")) + "\n").encode("utf-8")

    @classmethod
    def from_line(cls, line: bytes) -> OutboxEntry:
        """Parse one line; ``ValueError`` for a torn or foreign one."""
        values = json.loads(line.decode("utf-8"))
        if not isinstance(values, dict) or values.get("v") != OUTBOX_VERSION:
            raise ValueError("not an outbox entry of a known version")
        return cls(str(values["uid"]), str(values["topic"]), str(values["payload"]))


class Outbox:
    """An append-only, fsync'd queue of messages on disk (see the module docstring).

    Args:
        folder: The outbox folder (created when needed).

    Raises:
        OSError: the folder cannot be made, or another process (or another open outbox) uses it.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._holder = _lock_folder(self.folder)
        self._lock = threading.Lock()
        self._pending: list[OutboxEntry] = []
        self._acked_lines = 0
        self._fd: int | None = None
        self._ack_fd: int | None = None
        self._dirty = False
        self._load()

    @property
    def file(self) -> Path:
        """The JSON-lines file of messages."""
        return self.folder / OUTBOX_FILE

    # -- writing ---------------------------------------------------------------

    def append(self, entry: OutboxEntry) -> None:
        """Add a message at the end (one ``write``: survives a killed process; :meth:`sync` for power loss)."""
        line = entry.to_line()
        with self._lock:
            os.write(self._message_fd(), line)
            self._pending.append(entry)
            self._dirty = True

    def sync(self) -> None:
        """fsync what :meth:`append` wrote since the last call (outside the lock: appends never wait for it)."""
        with self._lock:
            if not self._dirty or self._fd is None:
                return
            descriptor = os.dup(self._fd)
            self._dirty = False
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def ack(self, uid: str) -> None:
        """The broker acknowledged ``uid``: it is no longer pending."""
        with self._lock:
            index = next((i for i, e in enumerate(self._pending) if e.uid == uid), None)
            if index is None:
                return
            del self._pending[index]
            if not self._pending and self._fd is not None:
                # Caught up: empty the file in place (no new file, no folder fsync on the next append).
                os.ftruncate(self._fd, 0)
                self._drop_acks()
                return
            if self._ack_fd is None:
                self._ack_fd = os.open(self.folder / ACKED_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.write(self._ack_fd, (uid + "\n").encode("ascii", "replace"))
            self._acked_lines += 1
            if self._acked_lines >= COMPACT_AFTER:
                self._compact()

    # -- reading ---------------------------------------------------------------

    def pending(self, start: int = 0, limit: int | None = None) -> list[OutboxEntry]:
        """Pending messages in order, from position ``start``, at most ``limit``."""
        with self._lock:
            end = None if limit is None else start + limit
            return list(self._pending[start:end])

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        """fsync and close the files; the pending messages stay on disk (none: the files are removed)."""
        with self._lock:
            try:
                if not self._pending:
                    self._clear()
                    return
                for name in ("_fd", "_ack_fd"):
                    fd = getattr(self, name)
                    if fd is not None:
                        try:
                            os.fsync(fd)
                        finally:
                            os.close(fd)
                        setattr(self, name, None)
                self._dirty = False
            finally:
                if self._holder is not None:
                    self._holder.close()  # releases the flock
                    self._holder = None

    # -- helpers -----------------------------------------------------------------

    def _message_fd(self) -> int:
        if self._fd is None:
            new = not self.file.exists()
            self._fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            if os.fstat(self._fd).st_size and not ends_with_newline(self.file):
                os.write(self._fd, b"\n")  # a torn line of a killed writer stays on its own
            if new:
                fsync_folder(self.folder)
        return self._fd

    def _load(self) -> None:
        self._pending, acked, raw = _read(self.folder)
        self._acked_lines = len(acked)
        if self._pending:
            logger.info("outbox %s: %d messages from an earlier run wait for the broker", self.folder,
                        len(self._pending))
            if self._acked_lines >= COMPACT_AFTER:
                self._compact()
        elif raw or acked:
            self._clear()

    def _clear(self) -> None:
        """Nothing pending: remove the messages first, then the acknowledgements (a crash between: harmless)."""
        for name in ("_fd", "_ack_fd"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)
        self.file.unlink(missing_ok=True)
        (self.folder / ACKED_FILE).unlink(missing_ok=True)
        fsync_folder(self.folder)
        self._acked_lines = 0
        self._dirty = False

    def _compact(self) -> None:
        """Rewrite the file with only the pending messages, then drop the acknowledgements."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        temporary = self.file.with_name(OUTBOX_FILE + ".tmp")
        with open(temporary, "wb") as handle:
            handle.write(b"".join(e.to_line() for e in self._pending))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.file)
        fsync_folder(self.folder)
        self._drop_acks()
        self._dirty = False

    def _drop_acks(self) -> None:
        """Forget the acknowledgements (the messages they name are gone from the file)."""
        if self._ack_fd is not None:
            os.close(self._ack_fd)
            self._ack_fd = None
        (self.folder / ACKED_FILE).unlink(missing_ok=True)
        self._acked_lines = 0


def read_pending(folder: str | os.PathLike) -> list[OutboxEntry]:
    """The messages waiting in the outbox ``folder``, in order, read without opening (or locking) it.

    For looking only (``inspector outbox show``): the outbox may be in use by a running station,
    so the answer can be a moment old. Nothing is written.
    """
    pending, _, _ = _read(Path(folder))
    return pending


def _read(folder: Path) -> tuple[list[OutboxEntry], set[str], bytes]:
    """(pending entries in order, acknowledged uids, the raw messages file) of an outbox folder."""
    acked: set[str] = set()
    try:
        acked = {line.strip() for line in (folder / ACKED_FILE).read_text("ascii", "replace").splitlines()}
    except FileNotFoundError:
        pass
    try:
        raw = (folder / OUTBOX_FILE).read_bytes()
    except FileNotFoundError:
        raw = b""
    pending: list[OutboxEntry] = []
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            entry = OutboxEntry.from_line(line)
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            logger.warning("outbox %s: line %d skipped (torn or unreadable: %s)", folder / OUTBOX_FILE, number, exc)
            continue
        if entry.uid not in acked:
            pending.append(entry)
    return pending, acked, raw


def _lock_folder(folder: Path):
    """An open file holding an exclusive, non-blocking ``flock`` on ``folder/lock`` (released when closed).

    ``None`` where ``fcntl`` does not exist (Windows): one process per outbox is then the user's rule.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not Linux or macOS
        return None
    holder = open(folder / LOCK_FILE, "a+b")  # noqa: SIM115 - held open for the outbox's life
    try:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder.close()
        raise OSError(f"the MQTT outbox {folder} is in use by another process (one process per outbox: "
                      "stop the other one, or give this one its own --outbox)") from exc
    return holder
