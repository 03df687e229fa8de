"""The frame-source protocol shared by cameras, video files, streams, folders and hot folders.

A source is opened, then :meth:`FrameSource.read` is called in a loop from one
consumer thread. Sources never raise into that loop: a lost camera shows up in
:attr:`FrameSource.state` and :attr:`FrameSource.status_message`, and a file that
cannot be read is recorded as a :class:`FailedRead` (see
:meth:`FrameSource.take_failures`) while the source carries on with the next one.
"""

from __future__ import annotations

import collections
import enum
import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Mapping

from inspector.core.records import Frame

logger = logging.getLogger(__name__)

StateListener = Callable[["SourceState", str], None]
_MAX_UNTAKEN_HASHES = 256


class SourceState(enum.Enum):
    """Where a source is in its life.

    ``CLOSED`` is before :meth:`FrameSource.open` and after
    :meth:`FrameSource.release`; the other four are the running states.
    """

    CLOSED = "closed"
    RUNNING = "running"
    LOST = "lost"
    RECONNECTING = "reconnecting"
    FINISHED = "finished"


@dataclass(frozen=True)
class FailedRead:
    """A frame a source could not deliver (typically a corrupt or vanished image file).

    Attributes:
        source: The source's :meth:`FrameSource.describe` string.
        path: The file concerned, if any.
        message: Why it failed, fit for an operator.
        frame_id: The running number the frame would have had, if known.
        timestamp: When the failure happened (seconds since the epoch).
        content_hash: SHA-256 of the file's bytes, when they could be read.
    """

    source: str
    path: str | None
    message: str
    frame_id: int | None = None
    timestamp: float = field(default_factory=time.time)
    content_hash: str | None = None


class FrameSource(ABC):
    """Base class of all frame sources.

    Subclasses implement :meth:`open`, :meth:`read`, :meth:`release`,
    :meth:`describe`, :attr:`is_real_time` and :attr:`finished`, and report
    through :meth:`_set_state` and :meth:`_add_failure`.

    Thread-safety: ``read`` is meant for one consumer thread; ``state``,
    ``status_message``, ``take_failures`` and ``release`` may be called from any
    thread. State listeners run on whichever thread changed the state (for
    capture sources, the capture thread), so a Qt worker should re-emit them as
    queued signals.
    """

    def __init__(self) -> None:
        self._state_lock = threading.Lock()
        self._state = SourceState.CLOSED
        self._status_message = ""
        self._listeners: list[StateListener] = []
        self._failures: list[FailedRead] = []
        self._untaken = 0
        self._hashes: collections.OrderedDict[tuple[int, str | None], str] = collections.OrderedDict()
        self.resumed = 0

    # -- the protocol -------------------------------------------------------

    @abstractmethod
    def open(self) -> None:
        """Start delivering frames. Never raises for an unreachable device or folder."""

    @abstractmethod
    def read(self, timeout: float | None = None) -> Frame | None:
        """Return the next frame.

        Args:
            timeout: Seconds to wait; ``None`` waits until a frame arrives, the
                source is finished or it is released.

        Returns:
            The next frame, or ``None`` when there is nothing yet (timeout) or
            nothing more (check :attr:`finished`).
        """

    @property
    @abstractmethod
    def is_real_time(self) -> bool:
        """True for live sources that drop old frames rather than fall behind."""

    @property
    @abstractmethod
    def finished(self) -> bool:
        """True once a finite source has delivered everything it will deliver."""

    @abstractmethod
    def release(self) -> None:
        """Stop and free the device or files. Safe to call twice."""

    @abstractmethod
    def describe(self) -> str:
        """A short stable description such as ``"camera:0"`` or ``"folder:/data/lot7"``."""

    # -- resuming and content hashes --------------------------------------------

    def resume_from(self, recorded: Mapping[str, str | None]) -> None:
        """Before :meth:`open`: files already recorded (path -> content hash, ``None``: any content).

        File-based sources skip such a file when its bytes still have that hash and
        count it in :attr:`resumed`; live sources ignore this.
        """

    def take_content_hash(self, frame: Frame) -> str | None:
        """The SHA-256 of the file ``frame`` was decoded from (once; ``None`` for live frames)."""
        with self._state_lock:
            return self._hashes.pop((frame.frame_id, frame.path), None)

    def _note_content_hash(self, frame: Frame, digest: str) -> None:
        with self._state_lock:
            self._hashes[(frame.frame_id, frame.path)] = digest
            while len(self._hashes) > _MAX_UNTAKEN_HASHES:
                self._hashes.popitem(last=False)

    # -- state ---------------------------------------------------------------

    @property
    def state(self) -> SourceState:
        """The current :class:`SourceState`."""
        with self._state_lock:
            return self._state

    @property
    def status_message(self) -> str:
        """A one-line explanation of the state for the status bar (may be empty)."""
        with self._state_lock:
            return self._status_message

    def add_state_listener(self, listener: StateListener) -> None:
        """Call ``listener(state, message)`` whenever the state or its message changes."""
        with self._state_lock:
            self._listeners.append(listener)

    def _set_state(self, state: SourceState, message: str = "") -> None:
        with self._state_lock:
            if state == self._state and message == self._status_message:
                return
            self._state = state
            self._status_message = message
            listeners = list(self._listeners)
        logger.debug("%s: %s %s", self.describe(), state.value, message)
        for listener in listeners:
            try:
                listener(state, message)
            except Exception:  # a faulty listener must not kill the capture thread
                logger.exception("state listener of %s failed", self.describe())

    # -- failures --------------------------------------------------------------

    @property
    def failures(self) -> list[FailedRead]:
        """Every failed read since the source was created, oldest first (a copy)."""
        with self._state_lock:
            return list(self._failures)

    def take_failures(self) -> list[FailedRead]:
        """Return the failed reads not yet taken, oldest first.

        Call it after each :meth:`read`: the failures returned happened before
        the frame that ``read`` returned, so the order of files is kept.
        """
        with self._state_lock:
            new = self._failures[len(self._failures) - self._untaken :]
            self._untaken = 0
            return new

    def _add_failure(self, path: str | None, message: str, frame_id: int | None = None,
                     content_hash: str | None = None) -> None:
        failure = FailedRead(self.describe(), path, message, frame_id, content_hash=content_hash)
        logger.warning("%s: %s", path or self.describe(), message)
        with self._state_lock:
            self._failures.append(failure)
            self._untaken += 1

    # -- context manager -----------------------------------------------------

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()} {self.state.value}>"
