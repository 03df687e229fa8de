"""Folder and hot-folder sources resume by content: recorded and unchanged files are skipped."""

from __future__ import annotations

import hashlib

import numpy as np

from inspector.core.imageio import write_image
from inspector.sources.folder import FolderSource
from inspector.sources.hotfolder import HotFolderSource


def _folder(tmp_path, n=4):
    paths = []
    for i in range(n):
        path = tmp_path / f"p{i}.png"
        write_image(path, np.full((20, 24, 3), 40 * (i + 1), np.uint8))
        paths.append(path)
    return paths


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _drain(source, timeout=None):
    frames = []
    while True:
        frame = source.read(timeout=timeout)
        if frame is None:
            return frames
        frames.append(frame)


def test_folder_skips_recorded_unchanged_files_and_rereads_replaced_ones(tmp_path):
    paths = _folder(tmp_path)
    recorded = {str(paths[0]): _sha(paths[0]), str(paths[1]): _sha(paths[1]), str(paths[2]): None}
    write_image(paths[1], np.full((20, 24, 3), 250, np.uint8))  # replaced under the same name
    source = FolderSource(tmp_path)
    source.resume_from(recorded)
    with source:
        assert source.resumed == 2  # p0 (same bytes) and p2 (recorded without a hash)
        frames = _drain(source)
    assert [f.path for f in frames] == [str(paths[1]), str(paths[3])]
    assert frames[0].image[0, 0, 0] == 250
    assert frames[0].frame_id == 1, "frame ids stay the file's index in the folder"


def test_folder_frames_carry_the_sha256_of_their_file(tmp_path):
    paths = _folder(tmp_path, 2)
    with FolderSource(tmp_path) as source:
        frames = _drain(source)
        hashes = [source.take_content_hash(f) for f in frames]
        assert source.take_content_hash(frames[0]) is None, "taken once"
    assert hashes == [_sha(p) for p in paths]


def test_unreadable_file_failure_carries_its_hash(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    with FolderSource(tmp_path) as source:
        assert _drain(source) == []
        failure = source.take_failures()[0]
    assert failure.content_hash == hashlib.sha256(b"not a png at all").hexdigest()


def test_hot_folder_with_existing_files_resumes_by_content(tmp_path):
    paths = _folder(tmp_path, 3)
    recorded = {str(paths[0]): _sha(paths[0]), str(paths[1]): "0" * 64}
    source = HotFolderSource(tmp_path, poll_interval=0.05, include_existing=True)
    source.resume_from(recorded)
    with source:
        assert source.resumed == 1
        frames = []
        for _ in range(40):
            frame = source.read(timeout=0.1)
            if frame is not None:
                frames.append(frame)
            if len(frames) == 2:
                break
        assert source.take_content_hash(frames[0]) == _sha(paths[1])
    assert sorted(f.path for f in frames) == [str(paths[1]), str(paths[2])]
