"""Reading images from disk into ``HxWx3`` uint8 RGB arrays, and finding them in folders.

Handles 8- and 16-bit, gray, RGB, RGBA and palette PNG, JPEG (EXIF orientation
applied), BMP and TIFF (8-, 16-bit and float). Unreadable files raise
:class:`ImageReadError` with the reason; so do files that hold more than one
image (multi-page TIFF, animated PNG): Inspector inspects single images and
never scores one page of several in silence. Folders are listed in natural
order with non-images set aside, and folders that cannot be read or symbolic
links that loop are reported in :attr:`Listing.problems`.

Depth rule (the same for every image, never per-image min-max): 16-bit values
are divided by 257 (0-65535 -> 0-255); float images with every value in [0, 1]
are multiplied by 255, float images within [0, 255] are taken as 8-bit values,
within [0, 65535] as 16-bit values; other float images (negative, larger, NaN or
infinite values) are refused with their range in the message.
"""

from __future__ import annotations

import errno
import os
import struct
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
    elif image.dtype in (np.float16, np.float32, np.float64):
        image = (float_to_unit(image) * 255.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def float_to_unit(image: np.ndarray) -> np.ndarray:
    """Float pixel values as float32 in [0, 1] by the module's depth rule.

    Raises:
        ValueError: for NaN or infinite values, or values outside [0, 65535].
    """
    values = image.astype(np.float32, copy=False)
    if not np.isfinite(values).all():
        raise ValueError("float image with NaN or infinite values")
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low < 0.0 or high > 65535.0:
        raise ValueError(f"float image with values from {low:g} to {high:g}; Inspector reads float images "
                         "in [0, 1], [0, 255] or [0, 65535]: convert it to 8 or 16 bits")
    scale = 1.0 if high <= 1.0 else 255.0 if high <= 255.0 else 65535.0
    return values / scale


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as ``HxWx3`` uint8 RGB (see the module's depth rule).

    Raises:
        ImageReadError: if the file is missing, empty, corrupt or not an image, a
            broken symbolic link, a multi-page TIFF or animated PNG, or a float
            image out of the supported range.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        if path.is_symlink() and not path.exists():
            raise ImageReadError(f"{path}: broken symbolic link (to {os.readlink(path)})") from exc
        raise ImageReadError(f"{path}: cannot open ({exc.strerror or exc})") from exc
    if data.size == 0:
        raise ImageReadError(f"{path}: file is empty")
    raw = data.tobytes()
    pages, float_samples = tiff_layout(raw)
    if pages <= 1:
        pages = png_frames(raw)
    if pages > 1:
        kind = "TIFF" if raw[:2] in (b"II", b"MM") else "animated PNG"
        raise ImageReadError(f"{path}: multi-page {kind} ({pages} pages): Inspector inspects single images; "
                             "split it into one file per image first")
    # IMREAD_COLOR applies the EXIF orientation; ANYDEPTH keeps 16-bit precision until we scale.
    # Float TIFFs are decoded unchanged (OpenCV cannot convert gray float to colour while decoding).
    flags = cv2.IMREAD_UNCHANGED if float_samples else cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
    image = cv2.imdecode(data, flags)
    if image is None or image.size == 0:
        raise ImageReadError(f"{path}: not a readable image (corrupt or unsupported format)")
    try:
        return to_rgb8(image)
    except ValueError as exc:
        raise ImageReadError(f"{path}: {exc}") from exc


_TIFF_MAX_PAGES = 100_000


def tiff_layout(data: bytes) -> tuple[int, bool]:
    """Full-resolution pages of a TIFF file and whether its samples are floats.

    Reduced-resolution pages (previews, thumbnails: NewSubfileType bit 0) and
    transparency masks (bit 2) are not counted. Returns ``(0, False)`` for data
    that is not a TIFF; a damaged page chain ends the count where it breaks
    (OpenCV then says whether the first page is readable).
    """
    if len(data) < 16 or data[:2] not in (b"II", b"MM"):
        return 0, False
    order = "<" if data[:2] == b"II" else ">"
    magic = struct.unpack(order + "H", data[2:4])[0]
    if magic == 42:
        offset, count_fmt, entry_fmt, entry_size, next_fmt = struct.unpack(order + "I", data[4:8])[0], "H", "HHII", 12, "I"
    elif magic == 43:
        offset, count_fmt, entry_fmt, entry_size, next_fmt = struct.unpack(order + "Q", data[8:16])[0], "Q", "HHQQ", 20, "Q"
    else:
        return 0, False
    pages, floats, seen = 0, False, set()
    count_size, next_size = struct.calcsize(count_fmt), struct.calcsize(next_fmt)
    while offset and offset not in seen and len(seen) < _TIFF_MAX_PAGES and offset + count_size <= len(data):
        seen.add(offset)
        (count,) = struct.unpack(order + count_fmt, data[offset:offset + count_size])
        entries_end = offset + count_size + count * entry_size
        if entries_end + next_size > len(data):
            break
        subfile = 0
        field_size = next_size  # the value field: 4 bytes (classic) or 8 (BigTIFF)
        for index in range(count):
            start = offset + count_size + index * entry_size
            tag, kind, values, _ = struct.unpack(order + entry_fmt, data[start:start + entry_size])
            if tag not in (254, 339) or kind not in (3, 4) or values < 1:
                continue
            width = 2 if kind == 3 else 4
            where = start + entry_size - field_size
            if values * width > field_size:  # the values are stored elsewhere; the field holds their offset
                (where,) = struct.unpack(order + next_fmt, data[where:where + field_size])
            if where + width > len(data):
                continue
            (value,) = struct.unpack(order + ("H" if kind == 3 else "I"), data[where:where + width])
            if tag == 254:
                subfile = value
            elif value == 3 and pages == 0:  # SampleFormat 3: IEEE float
                floats = True
        if not subfile & 0b101:
            pages += 1
        (offset,) = struct.unpack(order + next_fmt, data[entries_end:entries_end + next_size])
    return pages, floats


def png_frames(data: bytes) -> int:
    """The frame count of an animated PNG (its ``acTL`` chunk); 0 for other data, 1 for a still PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return 0
    position = 8
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        if kind == b"acTL" and length >= 8:
            return struct.unpack(">I", data[position + 8:position + 12])[0]
        if kind in (b"IDAT", b"IEND"):
            return 1
        position += 12 + length
    return 1


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
    """Image files found under some paths, the files set aside, and what could not be listed.

    Attributes:
        images: Image files, in natural order. A broken symbolic link with an image
            suffix is listed here, so that reading it reports it as unreadable.
        skipped: Files without an image suffix (and broken links without one).
        problems: ``(path, reason)`` for folders that could not be read, symbolic
            links that loop or lead to a folder already listed, and entries that are
            not regular files (sockets, devices ...): nothing under them was listed.
    """

    images: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)


MAX_LISTED_FOLDERS = 100_000
"""A bound on the folders one listing walks (a guard beside the loop detection)."""


def list_images(paths: Iterable[str | os.PathLike], recursive: bool = True) -> Listing:
    """Expand files and folders into image paths in natural order.

    Files without an image suffix are listed in ``skipped``; hidden files and
    files in hidden folders (below the given folder) are ignored. Symbolic links
    to folders are followed once per real folder, so a link loop ends the walk
    there (reported in ``problems``) instead of hanging; unreadable folders are
    reported in ``problems`` too. Paths that do not exist raise ``FileNotFoundError``;
    a given folder that cannot be read raises :class:`PermissionError` (or the
    :class:`OSError` of the failure).
    """
    listing = Listing()
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            (listing.images if is_image_path(path) else listing.skipped).append(path)
        elif path.is_dir():
            found: list[Path] = []
            _walk(path, recursive, found, listing)
            for p in natsorted(found, key=lambda q: str(q)):
                (listing.images if is_image_path(p) else listing.skipped).append(p)
        elif path.is_symlink():
            raise FileNotFoundError(f"{path}: broken symbolic link (to {os.readlink(path)})")
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return listing


def _walk(root: Path, recursive: bool, found: list[Path], listing: Listing) -> None:
    """Collect the files under ``root`` into ``found``; problems go to ``listing.problems``."""
    visited: dict[str, Path] = {}
    stack = [root]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in visited:
            ancestor = visited[real] in folder.parents
            listing.problems.append((folder, "symbolic link loop (leads back to " + str(visited[real]) + ")"
                                     if ancestor else f"link to a folder already listed ({visited[real]})"))
            continue
        if len(visited) >= MAX_LISTED_FOLDERS:
            listing.problems.append((folder, f"not listed: more than {MAX_LISTED_FOLDERS} folders"))
            continue
        visited[real] = folder
        try:
            with os.scandir(folder) as scan:
                entries = list(scan)
        except OSError as exc:
            if folder == root:  # the folder asked for: an error, like a missing one
                raise type(exc)(exc.errno, f"{root}: folder cannot be read ({exc.strerror or exc})") from exc
            listing.problems.append((folder, f"folder cannot be read ({exc.strerror or exc})"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            child = Path(entry.path)
            try:
                is_dir, is_file = entry.is_dir(), entry.is_file()
            except OSError as exc:
                reason = "symbolic link loop (it resolves to itself)" if exc.errno == errno.ELOOP else \
                    f"cannot be read ({exc.strerror or exc})"
                listing.problems.append((child, reason))
                continue
            if is_dir:
                if recursive:
                    stack.append(child)
            elif is_file:
                found.append(child)
            elif entry.is_symlink():
                reason = _link_error(child)
                if reason == "broken":
                    found.append(child)  # read_image then reports it as a broken link
                else:
                    listing.problems.append((child, f"symbolic link {reason}"))
            else:
                listing.problems.append((child, "not a regular file or folder"))


def _link_error(path: Path) -> str:
    """Why a symbolic link leads nowhere: ``"broken"`` (missing target) or a loop."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "loop (it resolves to itself)"
    return "broken"


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


def file_digest(path: str | os.PathLike) -> str | None:
    """The content hash stored with a file's decision: hex SHA-256 of its bytes, ``None`` if unreadable.

    Resume (the station's folder sources, the batch review, ``score --db``) compares it
    with the recorded one, so a file replaced under the same name is scored again.
    """
    import hashlib

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()
