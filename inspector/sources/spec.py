"""Source specs: ``camera:0``, ``video:PATH``, ``stream:URL``, ``folder:PATH``, ``hotfolder:PATH``.

Lives apart from :mod:`inspector.sources.base` so that the protocol does not
import its implementations (which import the protocol).
"""

from __future__ import annotations

import os
from typing import Any

from inspector.sources.base import FrameSource
from inspector.sources.camera import CameraSource, StreamSource, VideoFileSource
from inspector.sources.folder import FolderSource
from inspector.sources.hotfolder import HotFolderSource

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
