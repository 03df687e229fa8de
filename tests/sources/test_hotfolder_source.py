"""HotFolderSource: new files in arrival order, half-written files, never finishing."""

from __future__ import annotations

import os
import time

import cv2
import numpy as np

from inspector.core.imageio import read_image
from inspector.sources import hotfolder
from inspector.sources.base import SourceState
from inspector.sources.hotfolder import HotFolderSource

POLL = 0.03


def png_bytes(value: int) -> bytes:
    ok, data = cv2.imencode(".png", np.full((8, 8, 3), value, np.uint8))
    assert ok
    return data.tobytes()


def test_picks_up_new_files_in_arrival_order(tmp_path):
    (tmp_path / "old.png").write_bytes(png_bytes(1))
    with HotFolderSource(tmp_path, poll_interval=POLL) as source:
        assert source.state == SourceState.RUNNING
        assert source.read(timeout=3 * POLL) is None  # files present at start are not read
        (tmp_path / "z.png").write_bytes(png_bytes(26))
        time.sleep(3 * POLL)
        (tmp_path / "a.png").write_bytes(png_bytes(1))
        (tmp_path / "notes.txt").write_text("ignored")
        first = source.read(timeout=2)
        second = source.read(timeout=2)
        assert [first.path, second.path] == [str(tmp_path / "z.png"), str(tmp_path / "a.png")]
        assert [first.frame_id, second.frame_id] == [0, 1]
        assert first.image[0, 0].tolist() == [26, 26, 26]
        assert first.source == f"hotfolder:{tmp_path}"
        assert source.read(timeout=3 * POLL) is None
        assert not source.finished and not source.is_real_time
        assert source.take_failures() == []


def test_half_written_file_is_read_once_complete(tmp_path):
    data = png_bytes(200)
    with HotFolderSource(tmp_path, poll_interval=POLL, max_attempts=50) as source:
        target = tmp_path / "part.png"
        target.write_bytes(data[: len(data) // 2])
        assert source.read(timeout=5 * POLL) is None  # stable but undecodable: retried later
        with open(target, "ab") as stream:
            stream.write(data[len(data) // 2 :])
        frame = source.read(timeout=2)
        assert frame is not None and frame.image[0, 0, 0] == 200
        assert source.take_failures() == []


def test_growing_file_waits_for_a_stable_size(tmp_path, monkeypatch):
    attempts = []

    def counting_read(path):
        attempts.append(os.path.getsize(path))
        return read_image(path)

    monkeypatch.setattr(hotfolder, "read_image", counting_read)
    with HotFolderSource(tmp_path, poll_interval=0.1) as source:
        target = tmp_path / "slow.png"
        data = png_bytes(9)
        target.write_bytes(data[:10])
        time.sleep(0.02)
        assert source.read(timeout=0.1) is None  # first look: just seen
        target.write_bytes(data[:40])
        assert source.read(timeout=0.1) is None  # changed since: not read yet
        target.write_bytes(data)
        frame = source.read(timeout=2)
        assert frame is not None and frame.path == str(target)
        assert attempts == [len(data)]  # never opened while it was growing
        assert source.take_failures() == []


def test_corrupt_file_is_recorded_and_watch_goes_on(tmp_path):
    with HotFolderSource(tmp_path, poll_interval=POLL, max_attempts=2) as source:
        (tmp_path / "bad.png").write_bytes(b"garbage that never becomes a png")
        assert source.read(timeout=6 * POLL) is None
        (failure,) = source.take_failures()
        assert failure.path == str(tmp_path / "bad.png")
        (tmp_path / "good.png").write_bytes(png_bytes(3))
        assert source.read(timeout=2).path == str(tmp_path / "good.png")


def test_existing_files_skip_paths_and_overwrite(tmp_path):
    (tmp_path / "b2.png").write_bytes(png_bytes(2))
    (tmp_path / "b10.png").write_bytes(png_bytes(10))
    (tmp_path / "b1.png").write_bytes(png_bytes(1))
    source = HotFolderSource(
        tmp_path, poll_interval=POLL, include_existing=True, skip_paths={str(tmp_path / "b2.png")}
    )
    with source:
        paths = [source.read(timeout=2).path for _ in range(2)]
        assert paths == [str(tmp_path / "b1.png"), str(tmp_path / "b10.png")]
        assert source.read(timeout=3 * POLL) is None
        time.sleep(0.01)
        (tmp_path / "b1.png").write_bytes(png_bytes(111) + b"")  # new content, same name
        frame = source.read(timeout=2)
        assert frame.path == str(tmp_path / "b1.png") and frame.image[0, 0, 0] == 111


def test_missing_folder_is_lost_then_recovers(tmp_path):
    folder = tmp_path / "share"
    source = HotFolderSource(folder, poll_interval=POLL)
    source.open()
    assert source.state == SourceState.LOST
    assert source.read(timeout=2 * POLL) is None
    folder.mkdir()
    source.read(timeout=2 * POLL)
    assert source.state == SourceState.RUNNING
    (folder / "x.png").write_bytes(png_bytes(5))
    assert source.read(timeout=2).path == str(folder / "x.png")
    source.release()
    assert source.read(timeout=None) is None  # released: returns at once
