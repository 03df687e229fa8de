"""Durable files: the few system calls that make a write survive a kill or a power cut.

Used by the decision journal, settings and recipes, so that each
follows the same rule: write, flush, fsync the file, rename over the real
name, fsync the folder that holds the name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename or a new file in ``folder`` durable (POSIX; elsewhere nothing to do or possible)."""
    if os.name != "posix":
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it over ``path`` and fsync
    the folder. The temporary name is unique (``.NAME.<random>.tmp``), so two writers never share
    one, and it is removed when the write fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    fsync_folder(path.parent)


def ends_with_newline(path: str | os.PathLike) -> bool:
    """Whether a non-empty file's last byte is a newline (a torn last line is not)."""
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
