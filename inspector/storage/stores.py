"""One results-store interface, two backends: SQLite (embedded, the default) and PostgreSQL (a fleet).

:func:`open_store` takes what a user writes after ``--db``: a file path opens a
:class:`~inspector.storage.results_db.ResultStore` (SQLite), a
``postgresql://user@host:port/dbname`` URL a
:class:`~inspector.storage.postgres_store.PostgresStore` (psycopg 3, the ``scale``
extra). Both have the same public methods, columns and semantics; this module also
holds what they share: the station name, NG-image file naming, the score uid.

Nothing here imports a backend at module level, so importing it costs nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

URL_SCHEMES = ("postgresql://", "postgres://")

STORE_METHODS = ("record", "record_error", "record_audit", "query", "query_audit", "latest_rows", "done_paths",
                 "done_files", "count", "has_uid", "save_ng_image", "attach_overlay", "recorded_contents",
                 "close")
"""The public interface every backend has (tests check both against it)."""


def is_url(target: str | os.PathLike | None) -> bool:
    """Whether ``--db`` names a PostgreSQL server rather than an SQLite file."""
    return isinstance(target, str) and target.lower().startswith(URL_SCHEMES)


def default_station() -> str:
    """The station name stored with each decision: ``$INSPECTOR_STATION`` or the host name."""
    return os.environ.get("INSPECTOR_STATION") or socket.gethostname() or "station"


def redact(url: str) -> str:
    """A URL fit for messages: the password, if any, replaced by ``***``."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_store(target: str | os.PathLike | None = None, read_only: bool = False, *, station: str | None = None,
               images_dir: str | os.PathLike | None = None, timeout: float = 5.0) -> Any:
    """Open the results store ``target`` names.

    Args:
        target: An SQLite file path, a ``postgresql://`` URL, or ``None`` for the
            default SQLite file (:func:`~inspector.storage.results_db.default_db_path`).
        read_only: Open for reading only (``inspector results``): nothing is
            created, migrated or written.
        station: The name stored with each new decision (default :func:`default_station`).
        images_dir: Where NG images are saved (SQLite: beside the database;
            PostgreSQL: ``data_dir()/ng_images``).
        timeout: Seconds to wait for a lock (SQLite) or a connection (PostgreSQL).

    Returns:
        A ``ResultStore`` or a ``PostgresStore``.

    Raises:
        ResultStoreError: if the store cannot be used (and for a URL without psycopg installed).
        FileNotFoundError: read-only, for an SQLite file that does not exist.
    """
    if is_url(target):
        from inspector.storage.postgres_store import PostgresStore

        if read_only:
            return PostgresStore.open_read_only(str(target), timeout=timeout, images_dir=images_dir)
        return PostgresStore(str(target), images_dir=images_dir, station=station, timeout=timeout)
    from inspector.storage.results_db import ResultStore, default_db_path

    path = Path(target) if target else default_db_path()
    if read_only:
        return ResultStore.open_read_only(path, timeout=timeout)
    return ResultStore(path, images_dir=images_dir, station=station)


def score_uid(model_hash: str, path: str, content_hash: str | None) -> str | None:
    """The uid of a file's decision by ``inspector score``: one row per model, file and content.

    The unique index on ``uid`` then makes a second write of the same decision (a
    rerun, two jobs at once) store nothing. ``None`` (a fresh row each time) when the
    file's bytes could not be read.
    """
    if content_hash is None:
        return None
    key = f"{model_hash}\0{os.path.abspath(path)}\0{content_hash}".encode()
    return "score-" + hashlib.sha256(key).hexdigest()[:40]


# -- NG images: the same files and names for every backend ------------------------------

def write_ng_images(images_dir: Path, result: Any, overlay: np.ndarray | None = None) -> tuple[str, str | None]:
    """Save a decision's frame (and overlay) as PNG under ``images_dir/YYYY-MM-DD/`` (UTC).

    Names are made of the time, source, frame id and, for files, the original name;
    see :meth:`ResultStore.save_ng_image <inspector.storage.results_db.ResultStore.save_ng_image>`.
    """
    from inspector.core.imageio import write_image

    frame = result.frame
    moment = datetime.fromtimestamp(frame.timestamp, timezone.utc)
    folder = Path(images_dir) / moment.strftime("%Y-%m-%d")
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{moment.strftime('%H%M%S_%f')[:-3]}_{slug(frame.source)}_{frame.frame_id}"
    if frame.path:
        stem += f"_{slug(Path(frame.path).stem)}"
    suffix = f"_{result.verdict.lower()}.png"
    stem = _unique_stem(folder, stem[:150], suffix)
    image_path = folder / f"{stem}{suffix}"
    write_image(image_path, frame.image)
    overlay_path = None
    if overlay is not None:
        overlay_path = folder / f"{stem}_overlay.png"
        write_image(overlay_path, overlay)
    return str(image_path), (str(overlay_path) if overlay_path else None)


def overlay_path_for(image_path: str | None, row_id: int, images_dir: Path) -> Path:
    """Where :meth:`attach_overlay` writes: beside the row's saved image, else ``row<ID>_overlay.png``."""
    if image_path:
        stem = image_path[: -len("_ng.png")] if image_path.endswith("_ng.png") else os.path.splitext(image_path)[0]
        return Path(f"{stem}_overlay.png")
    return Path(images_dir) / f"row{int(row_id)}_overlay.png"


def slug(text: str, keep: int = 60) -> str:
    """File-name-safe form of a source description or file stem (its last ``keep`` chars)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[-keep:].strip("-.") or "frame"


def _unique_stem(folder: Path, stem: str, suffix: str) -> str:
    candidate, n = stem, 1
    while (folder / f"{candidate}{suffix}").exists():
        n += 1
        candidate = f"{stem}-{n}"
    return candidate
