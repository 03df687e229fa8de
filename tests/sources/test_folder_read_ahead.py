"""FolderSource decodes the next files on a helper thread while the caller works; order and failures unchanged."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np

import inspector.sources.folder as folder_module
from inspector.sources.folder import READ_AHEAD, FolderSource


def write_png(path, value: int) -> None:
    assert cv2.imwrite(str(path), np.full((12, 16, 3), value, np.uint8))


def wait_until(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def helper_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("folder-read") and t.is_alive()]


def test_next_files_are_decoded_ahead_on_a_helper_thread_in_order(tmp_path, monkeypatch):
    for index in range(1, 7):
        write_png(tmp_path / f"part{index}.png", index * 10)
    (tmp_path / "part3.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    decoded: list[tuple[str, str]] = []
    real_read = folder_module.read_image

    def recording_read(path, *args, **kwargs):
        decoded.append((threading.current_thread().name, path.name))
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(folder_module, "read_image", recording_read)
    source = FolderSource(tmp_path)
    source.open()
    first = source.read()
    assert first.path.endswith("part1.png") and first.image[0, 0].tolist() == [10, 10, 10]
    # While the caller inspects part1, the helper decodes the files after it, up to READ_AHEAD of them.
    assert wait_until(lambda: len(decoded) == 1 + READ_AHEAD)
    time.sleep(0.1)
    assert [name for _, name in decoded] == [f"part{i}.png" for i in range(1, 2 + READ_AHEAD)]
    assert all(thread.startswith("folder-read") for thread, _ in decoded)

    rest = []
    while (frame := source.read()) is not None:
        rest.append(frame)
    assert [f.path.rsplit("/", 1)[1] for f in rest] == ["part2.png", "part4.png", "part5.png", "part6.png"]
    assert [f.frame_id for f in rest] == [1, 3, 4, 5]
    assert [int(f.image[0, 0, 0]) for f in rest] == [20, 40, 50, 60]
    assert [(f.path.rsplit("/", 1)[1], f.frame_id) for f in source.take_failures()] == [("part3.png", 2)]
    assert sorted(name for _, name in decoded) == sorted(f"part{i}.png" for i in range(1, 7))  # each once
    assert source.finished and source.done == 6
    assert all(source.take_content_hash(f) for f in rest)


def test_release_and_reopen_forget_what_was_decoded_ahead(tmp_path):
    for index in range(1, 6):
        write_png(tmp_path / f"p{index}.png", index)
    source = FolderSource(tmp_path)
    source.open()
    assert source.read().path.endswith("p1.png")
    source.open()  # opened again: from the first file, nothing skipped or doubled
    names = []
    while (frame := source.read()) is not None:
        names.append(frame.path.rsplit("/", 1)[1])
    assert names == [f"p{i}.png" for i in range(1, 6)]

    source.open()
    source.read()
    assert helper_threads()
    source.release()
    assert wait_until(lambda: not helper_threads()), "the helper thread outlived release()"
    assert source.read() is None
