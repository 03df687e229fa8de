"""Model files: one safetensors file per model, JSON metadata in its header.

Layout: the tensors of the detector (and its maps) in safetensors, and under the
header key ``inspector`` a JSON document with ``format_version``, the detector
kind and configuration, backbone name and weights hash, preprocessing,
calibration, reference count, fit time and software version. ``content_sha256``
covers the metadata and every tensor byte, so truncation or tampering is caught.
Loading never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

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


def save_model_file(path: str | os.PathLike, metadata: dict, tensors: dict[str, torch.Tensor]) -> str:
    """Write a model file atomically; returns its content hash."""
    path = Path(path)
    cpu = {name: t.detach().contiguous().cpu() for name, t in tensors.items()}
    meta = dict(metadata, magic=MAGIC, format_version=FORMAT_VERSION)
    meta["content_sha256"] = content_hash(meta, cpu)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        save_file(cpu, tmp, metadata={"inspector": json.dumps(meta, sort_keys=True)})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return meta["content_sha256"]


def load_model_file(path: str | os.PathLike) -> ModelFileContents:
    """Read and verify a model file.

    Raises:
        ModelFileError: missing, truncated, not an Inspector model, written by a newer
            format version, or its content does not match its hash.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: not a readable model file (truncated or corrupt?): {exc}") from exc
    if "inspector" not in header:
        raise ModelFileError(f"{path}: a safetensors file, but not an Inspector model")
    try:
        metadata = json.loads(header["inspector"])
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: model metadata is corrupt: {exc}") from exc
    version = metadata.get("format_version")
    if metadata.get("magic") != MAGIC or not isinstance(version, int):
        raise ModelFileError(f"{path}: not an Inspector model file")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written in model format {version} by a newer Inspector; "
            f"this version reads format {FORMAT_VERSION} and older. Upgrade Inspector."
        )
    if content_hash(metadata, tensors) != metadata.get("content_sha256"):
        raise ModelFileError(f"{path}: content does not match its checksum (file modified or damaged)")
    return ModelFileContents(metadata=metadata, tensors=tensors)
