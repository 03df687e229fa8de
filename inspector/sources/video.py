"""Video files as a source: read frame by frame without skipping; a truncated file is reported as such."""

from __future__ import annotations

import os
import threading
from typing import Any

import cv2

from inspector.sources.camera import Capture, CaptureFactory, CaptureSource
from inspector.sources.registry import SourceKind, register_source

DAMAGED_FRAMES_TOLERATED = 3
"""Failed reads a video file may have before its declared end and still be read on (damaged frames)."""
FRAME_COUNT_SLACK = 0.01
"""Containers that estimate their frame count may overstate it by this fraction (at least one frame)."""


def _declared_frames(path: str) -> int:
    """The frame count the container declares (0 when it declares none or cannot be opened)."""
    capture = cv2.VideoCapture(path)
    try:
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT) if capture.isOpened() else 0
    finally:
        capture.release()
    return int(count) if count and count > 0 else 0


def _file_stamp(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


class VideoFileSource(CaptureSource):
    """A video file, read frame by frame without skipping; finishes at its end.

    Frames carry ``path=None``: the file is named by the source description,
    and ``Frame.path`` is kept for paths that identify one frame.

    Args:
        path: The video file.
        capture_factory: Opens the capture; defaults to ``cv2.VideoCapture(path)``.
        **kwargs: ``queue_size``, ``join_timeout`` (see :class:`CaptureSource`).
    """

    def __init__(
        self, path: str | os.PathLike, capture_factory: CaptureFactory | None = None, **kwargs: Any
    ):
        self.path = os.path.abspath(os.fspath(path))
        kwargs.setdefault("queue_size", 8)
        video_path = self.path
        super().__init__(
            f"video:{self.path}",
            capture_factory or (lambda: cv2.VideoCapture(video_path)),
            real_time=False,
            lost_message="video unreadable",
            **kwargs,
        )

    def _path(self) -> str | None:
        return self.path

    def open(self) -> None:
        """Note the file's declared frame count, size and time, then start reading (see the base class)."""
        self._declared = _declared_frames(self.path)
        self._stamp = _file_stamp(self.path)
        self._skipped_damaged = 0
        super().open()

    def _retry_damaged_frame(self, capture: Capture | None, stop: threading.Event) -> bool:
        # A failed read before the declared count may be a damaged frame: read past it (a few per file).
        declared = getattr(self, "_declared", 0)
        if capture is None or not declared or self._next_id + self._skipped_damaged >= declared:
            return False
        if self._skipped_damaged >= DAMAGED_FRAMES_TOLERATED:
            return False
        self._skipped_damaged += 1
        return not stop.is_set()

    def _end_of_file_problem(self) -> str | None:
        read, declared = self._next_id, getattr(self, "_declared", 0)
        if _file_stamp(self.path) != getattr(self, "_stamp", None):
            return f"video {self.path} changed while it was read (ended after {read} frames)"
        if declared and read < declared - max(1, round(declared * FRAME_COUNT_SLACK)):
            return (f"video ended after {read} of {declared} frames: the file is truncated or damaged "
                    f"({self.path})")
        return None


def _build_video(value: str, spec: str, options: dict[str, Any]) -> VideoFileSource:
    path = os.path.expanduser(value)
    if not os.path.isfile(path):
        raise ValueError(f"video file not found: {path}")
    return VideoFileSource(path, **options)


register_source(SourceKind("video", "Video file", "path", "video:PATH", "video file", "file", _build_video, order=20))
