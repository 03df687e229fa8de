"""OpenCV capture sources: a camera by index, a video file, a network stream.

Frames are grabbed on a background thread (plain :mod:`threading`) into a
bounded queue. Live sources (camera, stream) keep only the newest frames: when
the consumer falls behind, the oldest queued frame is dropped. A video file is
not live: the capture thread waits for room, so no frame is skipped.

A live source that fails (cannot open, ``read`` returns ``False``, or the
capture raises) goes to ``LOST``, then retries with exponential back-off and
returns to ``RUNNING`` by itself once frames arrive again. Nothing is raised
into the consumer.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from inspector.core.imageio import to_rgb8
from inspector.core.records import Frame
from inspector.sources.base import FrameSource, SourceState
from inspector.sources.registry import SourceKind, register_source

logger = logging.getLogger(__name__)

_POLL = 0.05  # how often blocked waits look at the stop flag, in seconds


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` the sources use (fakes implement just this)."""

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        """Whether the device or file is open."""

    def read(self) -> tuple[bool, np.ndarray | None]:
        """Grab and decode the next frame (BGR, BGRA or gray)."""

    def release(self) -> None:
        """Close the device or file."""


CaptureFactory = Callable[[], Capture]


class CaptureSource(FrameSource):
    """A source reading an OpenCV-style capture on its own thread.

    Use :class:`CameraSource`, :class:`VideoFileSource` or
    :class:`StreamSource`, which pick the description, the default capture and
    whether the source is live.

    Args:
        description: What :meth:`describe` returns, e.g. ``"camera:0"``.
        capture_factory: Called with no arguments to open the capture; called
            again on every reconnect.
        real_time: Live source (drop oldest, reconnect) or file (wait, finish).
        lost_message: Status message when a live source fails.
        queue_size: Frames kept waiting for the consumer.
        backoff_initial: First reconnect delay in seconds.
        backoff_max: Longest reconnect delay in seconds (the delay doubles up to it).
        join_timeout: How long :meth:`release` waits for the capture thread.

    Attributes:
        dropped: Frames discarded because the consumer was behind (live only).
    """

    def __init__(
        self,
        description: str,
        capture_factory: CaptureFactory,
        *,
        real_time: bool,
        lost_message: str = "camera lost",
        queue_size: int = 2,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        join_timeout: float = 3.0,
    ) -> None:
        super().__init__()
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        if not 0 < backoff_initial <= backoff_max:
            raise ValueError("back-off delays must satisfy 0 < backoff_initial <= backoff_max")
        self._description = description
        self._factory = capture_factory
        self._real_time = real_time
        self._lost_message = lost_message
        self._queue: queue.Queue[Frame] = queue.Queue(maxsize=queue_size)
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._join_timeout = join_timeout
        self._stop = threading.Event()
        self._ended = threading.Event()  # the capture thread will put no more frames
        self._thread: threading.Thread | None = None
        self._next_id = 0
        self.dropped = 0

    # -- protocol --------------------------------------------------------------

    @property
    def is_real_time(self) -> bool:
        """True for cameras and streams, False for video files."""
        return self._real_time

    @property
    def finished(self) -> bool:
        """True for a video file once every frame was read; never for a live source."""
        return not self._real_time and self._ended.is_set() and self._queue.empty()

    def describe(self) -> str:
        """E.g. ``"camera:0"``, ``"video:/abs/path.mp4"``, ``"stream:rtsp://host/x"``."""
        return self._description

    def open(self) -> None:
        """Start the capture thread; connecting happens there, so this returns at once."""
        if self._thread is not None and self._thread.is_alive():
            return
        # Fresh events per run: a thread stuck in the driver after release() keeps its own.
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._set_state(SourceState.RECONNECTING, f"connecting to {self._description}")
        self._thread = threading.Thread(
            target=self._run,
            args=(self._stop, self._ended),
            name=f"capture {self._description}",
            daemon=True,
        )
        self._thread.start()

    def read(self, timeout: float | None = None) -> Frame | None:
        """Return the oldest queued frame, waiting up to ``timeout`` seconds.

        Returns ``None`` on timeout, once a video file is exhausted (then
        :attr:`finished` is true), before :meth:`open` and after :meth:`release`.
        """
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            wait = _POLL if deadline is None else min(_POLL, max(0.0, deadline - time.monotonic()))
            try:
                return self._queue.get(timeout=wait)
            except queue.Empty:
                pass
            if self._ended.is_set() and self._queue.empty():
                if not self._real_time and self.state != SourceState.FINISHED:
                    self._set_state(SourceState.FINISHED, f"end of {self._description}")
                return None
            if self._thread is None or self._stop.is_set():
                return None
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def release(self) -> None:
        """Stop the capture thread and close the capture."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(self._join_timeout)
            if thread.is_alive():
                # Stuck inside the driver; it releases the capture when the call returns.
                logger.warning("%s: capture thread did not stop in time", self._description)
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._set_state(SourceState.CLOSED, "")

    # -- capture thread ----------------------------------------------------------

    def _run(self, stop: threading.Event, ended: threading.Event) -> None:
        capture: Capture | None = None
        delay = self._backoff_initial
        attempt = 0
        delivering = False
        try:
            while not stop.is_set():
                if capture is None:
                    capture = self._connect()
                    if capture is None and not self._real_time:
                        message = f"cannot open {self._description}"
                        self._add_failure(self._path(), message)
                        self._set_state(SourceState.FINISHED, message)
                        return
                image = None if capture is None else self._grab(capture)
                if stop.is_set():
                    return
                if image is not None:
                    if not delivering:
                        delivering = True
                        delay, attempt = self._backoff_initial, 0
                        self._set_state(SourceState.RUNNING, "")
                    self._deliver(image, stop)
                    continue
                if not self._real_time:
                    if self._retry_damaged_frame(capture, stop):
                        continue
                    problem = self._end_of_file_problem()
                    if problem:
                        self._add_failure(self._path(), problem)
                        self._set_state(SourceState.FINISHED, problem)
                    return  # end of the file
                if capture is not None:
                    _safe_release(capture)
                    capture = None
                delivering = False
                attempt += 1
                if not self._wait_to_retry(delay, attempt, stop):
                    return
                delay = min(delay * 2, self._backoff_max)
        finally:
            if capture is not None:
                _safe_release(capture)
            ended.set()

    def _retry_damaged_frame(self, capture: Capture | None, stop: threading.Event) -> bool:
        """A file source may have one damaged frame before its end: try reading past it once."""
        return False

    def _end_of_file_problem(self) -> str | None:
        """Why the end of a file is not a normal end (a truncated file), or ``None``."""
        return None

    def _wait_to_retry(self, delay: float, attempt: int, stop: threading.Event) -> bool:
        """Report the loss, wait ``delay`` seconds; False if released meanwhile."""
        self._set_state(SourceState.LOST, self._lost_message)
        if stop.wait(delay):
            return False
        self._set_state(
            SourceState.RECONNECTING,
            f"{self._lost_message}; reconnecting to {self._description} (attempt {attempt})",
        )
        return True

    def _connect(self) -> Capture | None:
        try:
            capture = self._factory()
        except Exception as exc:
            logger.info("%s: open failed: %s", self._description, exc)
            return None
        try:
            opened = capture is not None and bool(capture.isOpened())
        except Exception as exc:
            logger.info("%s: isOpened failed: %s", self._description, exc)
            opened = False
        if not opened:
            if capture is not None:
                _safe_release(capture)
            return None
        return capture

    def _grab(self, capture: Capture) -> np.ndarray | None:
        """The next frame as RGB, or ``None`` for a failed read or the end of a file."""
        try:
            ok, image = capture.read()
            if not ok or image is None or image.size == 0:
                return None
            return to_rgb8(image)
        except Exception as exc:
            logger.info("%s: read failed: %s", self._description, exc)
            return None

    def _deliver(self, image: np.ndarray, stop: threading.Event) -> None:
        frame = Frame(image=image, source=self._description, frame_id=self._next_id, path=None)
        self._next_id += 1
        if self._real_time:
            while True:
                try:
                    self._queue.put_nowait(frame)
                    return
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
        while not stop.is_set():
            try:
                self._queue.put(frame, timeout=_POLL)
                return
            except queue.Full:
                continue

    def _path(self) -> str | None:
        return None


class CameraSource(CaptureSource):
    """A live camera by OpenCV device index (``camera:0``).

    Args:
        index: The OpenCV device index.
        capture_factory: Opens the capture; defaults to ``cv2.VideoCapture(index)``.
        **kwargs: ``queue_size``, ``backoff_initial``, ``backoff_max``,
            ``join_timeout`` (see :class:`CaptureSource`).
    """

    def __init__(self, index: int, capture_factory: CaptureFactory | None = None, **kwargs: Any):
        if index < 0:
            raise ValueError(f"camera index must be non-negative, got {index}")
        self.index = index
        super().__init__(
            f"camera:{index}",
            capture_factory or (lambda: cv2.VideoCapture(index)),
            real_time=True,
            lost_message="camera lost",
            **kwargs,
        )


class StreamSource(CaptureSource):
    """A live network stream (RTSP, RTMP, HTTP MJPEG, ...) by URL.

    A password in the URL is used to connect but masked in :meth:`describe`.

    Args:
        url: The stream URL.
        capture_factory: Opens the capture; defaults to ``cv2.VideoCapture(url)``.
        **kwargs: See :class:`CaptureSource`.
    """

    def __init__(self, url: str, capture_factory: CaptureFactory | None = None, **kwargs: Any):
        self.url = url
        super().__init__(
            f"stream:{_mask_password(url)}",
            capture_factory or (lambda: cv2.VideoCapture(url)),
            real_time=True,
            lost_message="stream lost",
            **kwargs,
        )


def _safe_release(capture: Capture) -> None:
    try:
        capture.release()
    except Exception as exc:
        logger.debug("release failed: %s", exc)


def _mask_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")


def _build_camera(value: str, spec: str, options: dict[str, Any]) -> CameraSource:
    if not value.isdigit():
        raise ValueError(f"camera index must be a non-negative integer, got {value!r} in {spec!r}")
    return CameraSource(int(value), **options)


def _build_stream(value: str, spec: str, options: dict[str, Any]) -> StreamSource:
    scheme = value.partition("://")[0].lower() if "://" in value else ""
    if scheme not in STREAM_SCHEMES:
        raise ValueError(f"stream URL {value!r} must start with one of "
                         f"{', '.join(s + '://' for s in STREAM_SCHEMES)}")
    return StreamSource(value, **options)


register_source(SourceKind("camera", "Camera", "camera index", "camera:0", "camera index, e.g. 0", None,
                           _build_camera, order=10))
register_source(SourceKind("stream", "Stream", "URL", "stream:rtsp://HOST/PATH", "rtsp://host/path", None,
                           _build_stream, order=50))
