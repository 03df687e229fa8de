"""Model files: one safetensors file per model, JSON metadata in its header.

Layout: the tensors of the detector (and its maps) in safetensors, and under the
header key ``inspector`` a JSON document with ``format_version``, the detector
kind and configuration, backbone name and weights hash, preprocessing,
calibration, reference count, fit time and software version. ``content_sha256``
covers the metadata and every tensor byte, so truncation or damage is caught (it
is not a signature: see :mod:`inspector.storage.signing`). Loading never
unpickles anything.

Writing is atomic: a hidden temporary file ``.NAME.tmp-<pid>-<random>`` in the
same folder, fsync, ``os.replace``. A kill leaves at most that hidden temporary,
never a partial file under the model's name; the next save in the folder removes
temporaries whose process is gone. New files get ``0666`` less the umask (like
any file the user writes); a replaced file keeps its mode; a read-only file is
not replaced unless the caller says so (``--force``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from inspector.core.durable import fsync_folder

FORMAT_VERSION = 1
MAGIC = "inspector-model"


class ModelFileError(RuntimeError):
    """A model file that cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class ModelFileContents:
    """What a model file holds."""

    metadata: dict
    tensors: dict[str, torch.Tensor]


def content_hash(metadata: dict, tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the canonical metadata (without the hash itself) and all tensor bytes."""
    digest = hashlib.sha256()
    clean = {k: v for k, v in metadata.items() if k != "content_sha256"}
    digest.update(json.dumps(clean, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous().cpu()
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


TEMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]{8}$")
"""Temporary files of a save in progress: ``.NAME.tmp-<pid>-<8 hex>``, hidden, next to the target."""
STALE_AFTER_SECONDS = 24 * 3600
"""A temporary file this old is removed even when its process id is alive again (pid reuse)."""
FAULT_PAUSE_ENV = "INSPECTOR_FAULT_PAUSE_IN_SAVE"
"""Fault-injection hook for tests: seconds to pause with the temporary file half written."""


class OutputPathError(ValueError):
    """A model file cannot be written where asked (a folder, a read-only file, an unwritable folder).

    A :class:`ValueError`, so the command line exits with the usage code (2).
    """


def signature_path(path: str | os.PathLike) -> Path:
    """The sidecar signature of a model file: ``MODEL.sig`` next to it."""
    path = Path(path)
    return path.with_name(path.name + ".sig")


def is_read_only(path: Path) -> bool:
    """True when ``path`` has no write permission bit set, or this user cannot write it."""
    mode = path.stat().st_mode
    return not (mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) or not os.access(path, os.W_OK)


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def check_output_path(path: str | os.PathLike, *, overwrite_read_only: bool = False) -> Path:
    """Check, before any long work, that a model file can be written at ``path``.

    Creates the missing parent folders and writes (then removes) a probe file
    there, so that an unwritable folder is found now and not after a fit.

    Args:
        path: The model file to write.
        overwrite_read_only: Allow replacing an existing read-only file.

    Returns:
        The absolute path.

    Raises:
        OutputPathError: ``path`` is a folder or not a regular file, a parent is a
            file, the folder cannot be created or written, or the file is read-only.
    """
    path = Path(os.path.abspath(os.fspath(path)))
    if path.is_dir():
        raise OutputPathError(f"{path} is a folder; give a model file name, e.g. {path / 'model.safetensors'}")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise OutputPathError(f"{path} exists and is not a regular file; choose another name")
        if is_read_only(path) and not overwrite_read_only:
            raise OutputPathError(f"{path} is read-only; Inspector does not replace it. Write to another "
                                  "file, make it writable, or (command line) pass --force to replace it anyway")
    folder = path.parent
    for ancestor in (folder, *folder.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise OutputPathError(f"cannot write {path}: {ancestor} is a file, not a folder")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = _temp_name(path)
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(f"cannot write a model file in {folder}: {exc.strerror or exc}") from exc
    return path


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary model files left in ``folder`` by saves that were killed.

    A temporary file is stale when the process that wrote it is gone (its pid,
    part of the name, is not running) or it is older than a day. Files of saves
    still running are left alone. Returns the files removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = TEMP_PATTERN.match(entry.name)
        if not match or not entry.is_file(follow_symlinks=False):
            continue
        try:
            old = time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_SECONDS
            if old or not _pid_alive(int(match["pid"])):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process, or no way to tell: keep its file
    return True


def save_model_file(path: str | os.PathLike, metadata: dict, tensors: dict[str, torch.Tensor], *,
                    overwrite_read_only: bool = False) -> str:
    """Write a model file atomically; returns its content hash.

    The file is written to a hidden temporary file in the same folder
    (``.NAME.tmp-<pid>-<random>``), flushed to disk, then renamed over ``path``:
    a reader sees the old file or the new one, never part of one. The temporary
    file is removed if the save fails; those of killed saves are removed by the
    next save in the folder (:func:`remove_stale_temps`). A new file gets the
    mode a normal file gets (``0666`` less the umask); a replaced file keeps its
    mode. A signature sidecar (``MODEL.sig``) of the replaced file is removed: it
    signed other bytes.

    Raises:
        OutputPathError: see :func:`check_output_path`, or the write failed (disk full ...).
    """
    path = check_output_path(path, overwrite_read_only=overwrite_read_only)
    cpu = {name: t.detach().contiguous().cpu() for name, t in tensors.items()}
    meta = dict(metadata, magic=MAGIC, format_version=FORMAT_VERSION)
    meta["content_sha256"] = content_hash(meta, cpu)
    data = save_bytes(cpu, metadata={"inspector": json.dumps(meta, sort_keys=True)})
    remove_stale_temps(path.parent)
    previous_mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else None
    tmp = _temp_name(path)
    try:
        handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(handle, "wb") as stream:
            half = len(data) // 2
            stream.write(data[:half])
            _fault_pause(stream)
            stream.write(data[half:])
            stream.flush()
            os.fsync(stream.fileno())
            if previous_mode is not None:
                os.chmod(tmp, previous_mode)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    fsync_folder(path.parent)
    stale_signature = signature_path(path)
    if stale_signature.is_file():
        stale_signature.unlink()
    return meta["content_sha256"]


def _fault_pause(stream) -> None:
    seconds = os.environ.get(FAULT_PAUSE_ENV)
    if seconds:
        stream.flush()
        print("inspector: fault hook: model file half written", file=sys.stderr, flush=True)
        time.sleep(float(seconds))


def load_model_file(path: str | os.PathLike, trust=None) -> ModelFileContents:
    """Read and verify a model file.

    The file is read once; the signature check (when ``trust`` asks for one) and
    the parsing use the same bytes, so the file cannot change between the two.

    Args:
        path: The model file.
        trust: Optional :class:`inspector.storage.signing.TrustPolicy` (anything
            with ``check(path, data)``); it raises :class:`ModelFileError` for an
            unsigned or wrongly signed file where that is refused.

    Raises:
        ModelFileError: missing, truncated, not an Inspector model, written by a newer
            format version, its content does not match its hash, or refused by ``trust``.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read the model file ({exc.strerror or exc})") from exc
    if trust is not None:
        trust.check(path, data)
    try:
        header = _header_metadata(data)
        tensors = load_bytes(data)
    except (SafetensorError, ValueError, RuntimeError, struct.error) as exc:
        raise ModelFileError(f"{path}: not a readable model file (truncated or corrupt?): {exc}") from exc
    if "inspector" not in header:
        raise ModelFileError(f"{path}: a safetensors file, but not an Inspector model")
    try:
        metadata = json.loads(header["inspector"])
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: model metadata is corrupt: {exc}") from exc
    version = metadata.get("format_version") if isinstance(metadata, dict) else None
    if not isinstance(metadata, dict) or metadata.get("magic") != MAGIC or not isinstance(version, int):
        raise ModelFileError(f"{path}: not an Inspector model file")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written in model format {version} by a newer Inspector; "
            f"this version reads format {FORMAT_VERSION} and older. Upgrade Inspector."
        )
    if content_hash(metadata, tensors) != metadata.get("content_sha256"):
        raise ModelFileError(f"{path}: content does not match its checksum (file modified or damaged)")
    return ModelFileContents(metadata=metadata, tensors=tensors)


def _header_metadata(data: bytes) -> dict:
    """The ``__metadata__`` of a safetensors header (8-byte little-endian length, then JSON)."""
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise ValueError(f"header of {length} bytes in a file of {len(data)} bytes")
    header = json.loads(data[8:8 + length])
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise ValueError("the header's metadata is not a JSON object")
    return metadata
