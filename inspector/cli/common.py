"""Helpers shared by the sub-commands: reading image folders, loading models, messages."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from inspector.core.imageio import LoadedImages, list_images, read_images
from inspector.core.progress import Progress


def add_quiet(parser) -> None:
    """The ``--quiet`` flag that silences progress bars."""
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars on stderr")


def add_device(parser) -> None:
    """The ``--device`` option (CUDA when available by default)."""
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda if present)")


def warn(message: str) -> None:
    """A warning line on stderr."""
    print(f"inspector: warning: {message}", file=sys.stderr)


def load_folder(paths: Sequence[str | Path], progress: Progress, what: str, recursive: bool = True) -> LoadedImages:
    """Read all images under ``paths``; non-images and unreadable files are reported, not fatal.

    Raises:
        ValueError: when no readable image is found.
    """
    listing = list_images(paths, recursive=recursive)
    loaded = read_images(listing.images, progress)
    report_skipped(listing.skipped, loaded.errors)
    if not loaded.images:
        where = ", ".join(str(p) for p in paths)
        raise ValueError(f"no readable {what} images in {where}")
    return loaded


def report_skipped(skipped: Sequence[Path], errors: Sequence[tuple[Path, str]]) -> None:
    """List non-image files and unreadable images on stderr."""
    if skipped:
        warn(f"skipped {len(skipped)} non-image file(s): " + ", ".join(str(p) for p in skipped[:10])
             + (" ..." if len(skipped) > 10 else ""))
    for _, message in errors:
        warn(f"unreadable image: {message}")


def load_model(path: str, device: str | None = None, weights: str | None = None):
    """Load an :class:`~inspector.pipeline.model.InspectionModel` (imports torch lazily)."""
    from inspector.pipeline.model import InspectionModel

    return InspectionModel.load(path, device=device, weights=weights)
