"""The frame-source protocol shared by cameras, video files, streams, folders and hot folders.

A source is opened, then :meth:`FrameSource.read` is called in a loop from one
consumer thread. Sources never raise into that loop: a lost camera shows up in
:attr:`FrameSource.state` and :attr:`FrameSource.status_message`, and a file that
cannot be read is recorded as a :class:`FailedRead` (see
:meth:`FrameSource.take_failures`) while the source carries on with the next one.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

from inspector.core.records import Frame

logger = logging.getLogger(__name__)

StateListener = Callable[["SourceState", str], None]


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
    """

    source: str
    path: str | None
    message: str
    frame_id: int | None = None
    timestamp: float = field(default_factory=time.time)


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

    def _add_failure(self, path: str | None, message: str, frame_id: int | None = None) -> None:
        failure = FailedRead(self.describe(), path, message, frame_id)
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


SOURCE_KINDS = ("camera", "video", "stream", "folder", "hotfolder")
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
_FOLDER_OPTIONS = {"recursive": "recursive"}
_HOTFOLDER_OPTIONS = {
    "recursive": "recursive",
    "existing": "include_existing",
    "poll": "poll_interval",
}
_EXAMPLES = "camera:0, video:PATH, stream:rtsp://HOST/PATH, folder:PATH[?recursive=1], hotfolder:PATH"


def parse_source_spec(spec: str, **options: Any) -> FrameSource:
    """Build a source from a spec string.

    Specs: ``camera:INDEX``, ``video:PATH``, ``stream:URL`` (rtsp, rtsps, rtmp,
    http, https), ``folder:PATH`` and ``hotfolder:PATH``. Folder and hot-folder
    specs take options after ``?``: ``recursive=1`` (both), ``existing=1``
    (hot folder: also read files already there) and ``poll=SECONDS``.

    Args:
        spec: The spec string, e.g. ``"folder:/data/lot7?recursive=1"``.
        **options: Keyword arguments for the source's constructor (for example
            ``recursive=True``, ``skip_paths=...``, ``capture_factory=...``);
            they override options given in the spec.

    Returns:
        An unopened :class:`FrameSource`.

    Raises:
        ValueError: for a malformed spec, an unknown kind or option, or a path
            that does not exist.
    """
    from inspector.sources.camera import CameraSource, StreamSource, VideoFileSource
    from inspector.sources.folder import FolderSource
    from inspector.sources.hotfolder import HotFolderSource

    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"source spec {spec!r} has no kind; expected one of: {_EXAMPLES}")
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    rest = rest.strip()
    if kind not in SOURCE_KINDS:
        raise ValueError(
            f"unknown source kind {kind!r} in {spec!r}; expected one of: {', '.join(SOURCE_KINDS)}"
        )
    if not rest:
        raise ValueError(f"source spec {spec!r} is missing its {_what(kind)}")

    if kind == "camera":
        if not rest.isdigit():
            raise ValueError(f"camera index must be a non-negative integer, got {rest!r} in {spec!r}")
        return CameraSource(int(rest), **options)
    if kind == "stream":
        scheme = rest.partition("://")[0].lower() if "://" in rest else ""
        if scheme not in STREAM_SCHEMES:
            raise ValueError(
                f"stream URL {rest!r} must start with one of "
                f"{', '.join(s + '://' for s in STREAM_SCHEMES)}"
            )
        return StreamSource(rest, **options)
    if kind == "video":
        path = os.path.expanduser(rest)
        if not os.path.isfile(path):
            raise ValueError(f"video file not found: {path}")
        return VideoFileSource(path, **options)

    allowed = _FOLDER_OPTIONS if kind == "folder" else _HOTFOLDER_OPTIONS
    raw_path, spec_options = _split_options(rest, allowed, spec)
    path = os.path.expanduser(raw_path)
    if not os.path.isdir(path):
        raise ValueError(f"{kind} {path!r} is not an existing folder")
    merged = {**spec_options, **options}
    if kind == "folder":
        return FolderSource(path, **merged)
    return HotFolderSource(path, **merged)


def _what(kind: str) -> str:
    return {"camera": "camera index", "stream": "URL"}.get(kind, "path")


def _split_options(rest: str, allowed: dict[str, str], spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``PATH?key=value&...`` into the path and constructor keyword arguments."""
    path, sep, query = rest.rpartition("?")
    if not sep:
        return rest, {}
    if not path:
        raise ValueError(f"source spec {spec!r} is missing its path before '?'")
    options: dict[str, Any] = {}
    for item in query.split("&"):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if key not in allowed:
            raise ValueError(
                f"unknown option {key!r} in {spec!r}; allowed: {', '.join(sorted(allowed))}"
            )
        name = allowed[key]
        if name == "poll_interval":
            try:
                seconds = float(value)
            except ValueError:
                raise ValueError(f"option poll in {spec!r} must be a number of seconds") from None
            if not seconds > 0:
                raise ValueError(f"option poll in {spec!r} must be positive")
            options[name] = seconds
        else:
            options[name] = _parse_flag(value if eq else "1", key, spec)
    return path, options


def _parse_flag(value: str, key: str, spec: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"option {key} in {spec!r} must be 1 or 0, got {value!r}")
