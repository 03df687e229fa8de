"""parse_source_spec (inspector.sources.spec): every kind, options, and clear errors."""

from __future__ import annotations

import pytest

from inspector.sources.base import SourceState
from inspector.sources.camera import CameraSource, StreamSource
from inspector.sources.video import VideoFileSource
from inspector.sources.folder import FolderSource
from inspector.sources.hotfolder import HotFolderSource
from inspector.sources.spec import parse_source_spec


def test_kinds(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    camera = parse_source_spec("camera:2")
    assert isinstance(camera, CameraSource) and camera.describe() == "camera:2"
    assert camera.is_real_time and camera.state == SourceState.CLOSED
    assert isinstance(parse_source_spec("stream:rtsp://cam.local/live"), StreamSource)
    assert isinstance(parse_source_spec("stream:http://cam.local/mjpg?x=1"), StreamSource)
    assert isinstance(parse_source_spec(f"video:{video}"), VideoFileSource)
    folder = parse_source_spec(f"folder:{tmp_path}")
    assert isinstance(folder, FolderSource) and not folder.recursive
    assert folder.describe() == f"folder:{tmp_path}"
    hot = parse_source_spec(f"hotfolder:{tmp_path}?poll=0.2&existing=1")
    assert isinstance(hot, HotFolderSource)
    assert hot.poll_interval == 0.2 and hot.include_existing


def test_recursive_option_and_keyword(tmp_path):
    assert parse_source_spec(f"folder:{tmp_path}?recursive=1").recursive
    assert not parse_source_spec(f"folder:{tmp_path}?recursive=0").recursive
    assert parse_source_spec(f"folder:{tmp_path}", recursive=True).recursive
    assert not parse_source_spec(f"folder:{tmp_path}?recursive", recursive=False).recursive
    skipping = parse_source_spec(f"folder:{tmp_path}", skip_paths={"a.png"})
    assert isinstance(skipping, FolderSource)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no kind"),
        ("camera", "no kind"),
        ("webcam:0", "unknown source kind 'webcam'"),
        ("camera:", "missing its camera index"),
        ("camera:front", "non-negative integer"),
        ("camera:-1", "non-negative integer"),
        ("stream:ftp://host/x", "must start with one of"),
        ("stream:cam.local", "must start with one of"),
        ("video:/no/such/clip.mp4", "video file not found"),
        ("folder:/no/such/folder", "not an existing folder"),
        ("hotfolder:/no/such/folder", "not an existing folder"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_source_spec(spec)


def test_bad_options(tmp_path):
    with pytest.raises(ValueError, match="unknown option 'deep'"):
        parse_source_spec(f"folder:{tmp_path}?deep=1")
    with pytest.raises(ValueError, match="must be 1 or 0"):
        parse_source_spec(f"folder:{tmp_path}?recursive=maybe")
    with pytest.raises(ValueError, match="poll"):
        parse_source_spec(f"hotfolder:{tmp_path}?poll=soon")
    with pytest.raises(ValueError, match="unknown option 'existing'"):
        parse_source_spec(f"folder:{tmp_path}?existing=1")
