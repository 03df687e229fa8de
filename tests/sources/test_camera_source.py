"""Capture sources with fake captures: loss and reconnection, dropping, video files."""

from __future__ import annotations

import threading
import time

from pathlib import Path

import cv2
import numpy as np
import pytest

from inspector.sources.base import SourceState
from inspector.sources.camera import CameraSource, StreamSource
from inspector.sources.video import VideoFileSource

FAST = {"backoff_initial": 0.01, "backoff_max": 0.04}


def bgr(value: int) -> np.ndarray:
    """A 4x6 BGR frame whose blue channel is ``value`` (so RGB order is checkable)."""
    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 0] = value
    return image


class FakeCapture:
    """Yields ``count`` frames starting at ``first``, then fails (or ends) or blocks on ``hold``."""

    def __init__(self, first: int, count: int | None, opened: bool = True, hold=None, delay=0.0):
        self.next, self.left, self.opened = first, count, opened
        self.hold, self.delay = hold, delay
        self.released = False
        self.reads = 0

    def isOpened(self) -> bool:  # noqa: N802
        return self.opened

    def read(self):
        self.reads += 1
        if self.left is not None and self.left <= 0:
            if self.hold is not None:
                self.hold.wait(5)
            return False, None
        if self.left is not None:
            self.left -= 1
        if self.delay:
            time.sleep(self.delay)
        value, self.next = self.next, self.next + 1
        return True, bgr(value % 256)

    def release(self) -> None:
        self.released = True


class Script:
    """A capture factory that hands out prepared captures (or raises) in turn."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.made = []

    def __call__(self):
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        self.made.append(step)
        return step


def wait_for(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def test_camera_lost_then_reconnects_and_resumes():
    script = Script(
        FakeCapture(0, 3),  # three frames, then the camera fails
        FakeCapture(0, None, opened=False),  # first retry: device not there
        OSError("driver exploded"),  # second retry: the factory raises
        FakeCapture(100, None, delay=0.002),  # back again
    )
    source = CameraSource(0, capture_factory=script, queue_size=10, **FAST)
    seen = []
    source.add_state_listener(lambda state, message: seen.append((state, message)))
    with source:
        frames = [source.read(timeout=2) for _ in range(3)]
        assert [f.frame_id for f in frames] == [0, 1, 2]
        later = source.read(timeout=2)
        assert later is not None
        assert later.frame_id >= 3
        assert later.image[0, 0, 2] >= 100  # blue is last in RGB: from the new capture
        assert later.source == "camera:0"
        assert source.state == SourceState.RUNNING
        assert not source.finished
    states = [state for state, _ in seen]
    lost = states.index(SourceState.LOST)
    assert states[0] == SourceState.RECONNECTING  # connecting
    assert SourceState.RUNNING in states[:lost]
    assert (SourceState.LOST, "camera lost") in seen
    assert SourceState.RECONNECTING in states[lost:]
    assert states[lost:].count(SourceState.LOST) == 3  # failed read, not opened, raised
    assert states[-2] == SourceState.RUNNING and states[-1] == SourceState.CLOSED
    assert all(capture.released for capture in script.made)


def test_frames_are_rgb_and_increasing():
    source = CameraSource(1, capture_factory=lambda: FakeCapture(7, None, delay=0.001), **FAST)
    with source:
        first = source.read(timeout=2)
        second = source.read(timeout=2)
    assert first.image.shape == (4, 6, 3) and first.image.dtype == np.uint8
    assert first.image[0, 0, 2] >= 7 and first.image[0, 0, 0] == 0
    assert second.frame_id > first.frame_id
    assert first.path is None


def test_live_source_drops_oldest_when_consumer_is_slow():
    hold = threading.Event()
    capture = FakeCapture(0, 20, hold=hold)
    source = CameraSource(0, capture_factory=lambda: capture, queue_size=3, **FAST)
    source.open()
    try:
        assert wait_for(lambda: capture.reads > 20)  # all 20 delivered, now blocked in read
        frames = [source.read(timeout=1) for _ in range(3)]
        assert [f.frame_id for f in frames] == [17, 18, 19]
        assert source.dropped == 17
        assert source.is_real_time
    finally:
        hold.set()
        source.release()
    assert source.state == SourceState.CLOSED


def test_video_file_skips_nothing_and_finishes():
    capture = FakeCapture(0, 30)
    source = VideoFileSource("clip.mp4", capture_factory=lambda: capture, queue_size=2)
    assert not source.is_real_time
    with source:
        time.sleep(0.05)  # let the capture thread run ahead into the full queue
        ids = []
        while (frame := source.read(timeout=2)) is not None:
            ids.append(frame.frame_id)
        assert ids == list(range(30))
        assert source.finished
        assert source.state == SourceState.FINISHED
        assert source.take_failures() == []
    assert capture.released


def test_video_that_cannot_be_opened_finishes_with_a_failure():
    source = VideoFileSource("missing.mp4", capture_factory=lambda: FakeCapture(0, 0, opened=False))
    with source:
        assert source.read(timeout=2) is None
        assert source.finished
        assert source.state == SourceState.FINISHED
        (failure,) = source.take_failures()
        assert failure.path.endswith("missing.mp4")
        assert "cannot open" in failure.message


def test_real_video_file_round_trip(tmp_path):
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    if not writer.isOpened():
        pytest.skip("no MJPG writer in this OpenCV build")
    for i in range(5):
        writer.write(np.full((24, 32, 3), i * 40, np.uint8))
    writer.release()
    with VideoFileSource(path) as source:
        frames = []
        while (frame := source.read(timeout=2)) is not None:
            frames.append(frame)
    assert [f.frame_id for f in frames] == list(range(5))
    assert frames[0].image.shape == (24, 32, 3)
    assert source.describe() == f"video:{path}"


def _write_clip(path: str, frames: int) -> None:
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    if not writer.isOpened():
        pytest.skip("no MJPG writer in this OpenCV build")
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()


def _read_to_end(source) -> tuple[list, list]:
    frames, failures = [], []
    with source:
        while (frame := source.read(timeout=2)) is not None:
            frames.append(frame)
        failures = source.take_failures()
        state, message = source.state, source.status_message
    return frames, failures, (state, message)


def test_truncated_video_is_reported_not_taken_for_its_end(tmp_path):
    whole, cut = str(tmp_path / "whole.avi"), str(tmp_path / "cut.avi")
    _write_clip(whole, 60)
    data = Path(whole).read_bytes()
    Path(cut).write_bytes(data[: len(data) // 2])  # the index still declares 60 frames

    frames, failures, _ = _read_to_end(VideoFileSource(whole))
    assert len(frames) == 60 and failures == []
    frames, failures, (state, message) = _read_to_end(VideoFileSource(cut))
    assert 0 < len(frames) < 60
    assert [f.path for f in failures] == [cut]
    assert f"video ended after {len(frames)} of 60 frames: the file is truncated or damaged" in failures[0].message
    assert state == SourceState.FINISHED and "truncated" in message


def test_release_wakes_blocked_read_and_stops_retrying():
    source = CameraSource(0, capture_factory=Script(OSError("no camera")), backoff_initial=0.01,
                          backoff_max=0.02)
    source.open()
    assert wait_for(lambda: source.state in (SourceState.LOST, SourceState.RECONNECTING))
    result = []
    reader = threading.Thread(target=lambda: result.append(source.read(timeout=None)))
    reader.start()
    time.sleep(0.05)
    source.release()
    reader.join(2)
    assert not reader.is_alive() and result == [None]
    assert source.read(timeout=0) is None


def test_stream_description_masks_password():
    source = StreamSource("rtsp://admin:secret@10.0.0.5:554/live", capture_factory=lambda: None)
    assert source.describe() == "stream:rtsp://admin:***@10.0.0.5:554/live"
    assert source.url.endswith("secret@10.0.0.5:554/live")
