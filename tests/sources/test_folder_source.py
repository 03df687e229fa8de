"""FolderSource: natural order, corrupt files recorded, recursion, resume."""

from __future__ import annotations

import cv2
import numpy as np

from inspector.sources.base import SourceState
from inspector.sources.folder import FolderSource


def write_png(path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((8, 10, 3), value, np.uint8))


def read_all(source: FolderSource) -> list:
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    return frames


def test_natural_order_and_corrupt_file_does_not_stop(tmp_path):
    for name, value in [("img10.png", 10), ("img2.png", 2), ("img1.png", 1)]:
        write_png(tmp_path / name, value)
    (tmp_path / "img3.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    (tmp_path / "img4.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    write_png(tmp_path / "sub" / "img5.png", 5)

    source = FolderSource(tmp_path)
    source.open()
    assert source.total == 5 and not source.finished
    frames = read_all(source)
    assert [f.path for f in frames] == [str(tmp_path / n) for n in ("img1.png", "img2.png", "img10.png")]
    assert [f.frame_id for f in frames] == [0, 1, 4]
    assert frames[1].image[0, 0].tolist() == [2, 2, 2]
    assert all(f.source == f"folder:{tmp_path}" for f in frames)
    failures = source.take_failures()
    assert [(f.path, f.frame_id) for f in failures] == [
        (str(tmp_path / "img3.png"), 2),
        (str(tmp_path / "img4.png"), 3),
    ]
    assert "empty" in failures[1].message and str(tmp_path) not in failures[1].message
    assert source.take_failures() == []
    assert len(source.failures) == 2
    assert source.finished and source.done == 5
    assert source.state == SourceState.FINISHED
    assert [p.name for p in source.skipped_paths] == ["notes.txt"]
    assert not source.is_real_time


def test_failures_are_taken_in_file_order(tmp_path):
    write_png(tmp_path / "a1.png", 1)
    (tmp_path / "a2.png").write_bytes(b"junk")
    write_png(tmp_path / "a3.png", 3)
    source = FolderSource(tmp_path)
    source.open()
    assert source.read().path.endswith("a1.png") and source.take_failures() == []
    assert source.read().path.endswith("a3.png")
    assert [f.path for f in source.take_failures()] == [str(tmp_path / "a2.png")]


def test_recursive_and_skip_paths(tmp_path):
    write_png(tmp_path / "a.png", 1)
    write_png(tmp_path / "sub" / "b.png", 2)
    write_png(tmp_path / "sub" / "deeper" / "c.png", 3)
    write_png(tmp_path / ".hidden" / "d.png", 4)
    with FolderSource(tmp_path, recursive=True) as source:
        assert [f.path for f in read_all(source)] == [
            str(tmp_path / "a.png"),
            str(tmp_path / "sub" / "b.png"),
            str(tmp_path / "sub" / "deeper" / "c.png"),
        ]
    done = {str(tmp_path / "a.png"), str(tmp_path / "sub" / "b.png")}
    with FolderSource(tmp_path, recursive=True, skip_paths=done) as source:
        assert source.total == 1
        (frame,) = read_all(source)
    assert frame.path == str(tmp_path / "sub" / "deeper" / "c.png")
    assert frame.frame_id == 2  # same id as in the full run


def test_empty_and_missing_folder(tmp_path):
    with FolderSource(tmp_path) as source:
        assert source.read() is None and source.finished
    missing = FolderSource(tmp_path / "gone")
    missing.open()
    assert missing.read() is None and missing.finished
    assert missing.state == SourceState.FINISHED
    assert "cannot list" in missing.take_failures()[0].message


def test_link_loops_and_aliases_are_reported_as_failures_not_skipped_silently(tmp_path):
    write_png(tmp_path / "lot" / "a.png", 90)
    (tmp_path / "lot" / "loop").symlink_to(tmp_path / "lot", target_is_directory=True)
    source = FolderSource(tmp_path, recursive=True)
    source.open()
    frames, failures = [], []
    for _ in range(10):  # a read may return None to let the caller take a failure first
        frames += read_all(source)
        failures += source.take_failures()
        if source.finished:
            break
    source.release()
    assert [frame.path for frame in frames] == [str(tmp_path / "lot" / "a.png")]
    assert [f.path for f in failures] == [str(tmp_path / "lot" / "loop")]
    assert failures[0].message.startswith("not listed: symbolic link loop")


def test_cli_prints_what_the_listing_could_not_enter(tmp_path, capsys):
    from inspector.cli.common import load_folder
    from inspector.core.progress import silent

    write_png(tmp_path / "a.png", 90)
    (tmp_path / "again").symlink_to(tmp_path, target_is_directory=True)
    loaded = load_folder([tmp_path], silent(), "reference")
    assert len(loaded.images) == 1
    assert f"not listed: {tmp_path / 'again'}: symbolic link loop" in capsys.readouterr().err
