"""Durable files: the few system calls that make a write survive a kill or a power cut.

Used by the decision journal, the MQTT outbox and model files, so that each
follows the same rule: write, flush, fsync the file, rename over the real
name, fsync the folder that holds the name.
"""

from __future__ import annotations

import os
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
    """Write ``data`` to ``path.tmp``, fsync it, rename it over ``path`` and fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_folder(path.parent)


def ends_with_newline(path: str | os.PathLike) -> bool:
    """Whether a non-empty file's last byte is a newline (a torn last line is not)."""
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
