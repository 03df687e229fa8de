"""Reading images from disk into ``HxWx3`` uint8 RGB arrays, and finding them in folders.

Handles 8- and 16-bit, gray, RGB, RGBA and palette PNG, JPEG (EXIF orientation
applied), BMP and TIFF. Unreadable files raise :class:`ImageReadError` with the
reason; folders are listed in natural order with non-images set aside.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
from natsort import natsorted

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
)


class ImageReadError(OSError):
    """An image file that could not be read (missing, empty, corrupt or unsupported)."""


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Convert an OpenCV-decoded array (BGR/BGRA/gray, any depth) to ``HxWx3`` uint8 RGB."""
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        scale = 255.0 if float(np.nanmax(image)) <= 1.0 else 1.0
        image = np.clip(np.nan_to_num(image) * scale, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as ``HxWx3`` uint8 RGB.

    Raises:
        ImageReadError: if the file is missing, empty, corrupt or not an image.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot open ({exc.strerror or exc})") from exc
    if data.size == 0:
        raise ImageReadError(f"{path}: file is empty")
    # IMREAD_COLOR applies the EXIF orientation; ANYDEPTH keeps 16-bit precision until we scale.
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if image is None or image.size == 0:
        raise ImageReadError(f"{path}: not a readable image (corrupt or unsupported format)")
    return to_rgb8(image)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB (or single-channel) uint8 image; the format follows the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(path.suffix or ".png", array)
    if not ok:
        raise OSError(f"{path}: could not encode image")
    encoded.tofile(path)


def is_image_path(path: str | os.PathLike) -> bool:
    """True when the file name has an image suffix."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


@dataclass
class Listing:
    """Image files found under some paths, and the files that were set aside."""

    images: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)


def list_images(paths: Iterable[str | os.PathLike], recursive: bool = True) -> Listing:
    """Expand files and folders into image paths in natural order.

    Files without an image suffix are listed in ``skipped``; hidden files and
    files in hidden folders (below the given folder) are ignored.
    Paths that do not exist raise ``FileNotFoundError``.
    """
    listing = Listing()
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            (listing.images if is_image_path(path) else listing.skipped).append(path)
        elif path.is_dir():
            pattern = "**/*" if recursive else "*"
            found = [p for p in path.glob(pattern) if p.is_file()]
            for p in natsorted(found, key=lambda q: str(q)):
                if any(part.startswith(".") for part in p.relative_to(path).parts):
                    continue
                (listing.images if is_image_path(p) else listing.skipped).append(p)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return listing


@dataclass
class LoadedImages:
    """Images read from a listing, with the files that failed and why."""

    images: list[np.ndarray] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    errors: list[tuple[Path, str]] = field(default_factory=list)


def read_images(paths: Iterable[Path], progress=None) -> LoadedImages:
    """Read every path; unreadable files are collected in ``errors`` and skipped.

    Args:
        paths: Image files.
        progress: Optional :class:`inspector.core.progress.Progress`.
    """
    paths = list(paths)
    loaded = LoadedImages()
    for index, path in enumerate(paths):
        try:
            loaded.images.append(read_image(path))
            loaded.paths.append(path)
        except ImageReadError as exc:
            loaded.errors.append((path, str(exc)))
        if progress is not None:
            progress.update(index + 1, len(paths), "reading images")
    return loaded


def image_digest(image: np.ndarray) -> str:
    """A short content digest of decoded pixels (independent of file name and format)."""
    import hashlib

    digest = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=12)
    digest.update(str(image.shape).encode())
    return digest.hexdigest()
