"""A hot folder: images dropped into a folder by another program, read as they arrive.

The folder is polled (portable, works on network shares). A file is read only
once its size and modification time are the same in two polls in a row, so a
file still being written is not read half-way. A file that still cannot be
decoded is retried on later polls, and recorded as a
:class:`~inspector.sources.base.FailedRead` after ``max_attempts``. A file
overwritten later with new content counts as a new arrival. The source never
finishes by itself.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from natsort import natsort_keygen

from inspector.core.imageio import ImageReadError, file_digest, is_image_path, read_image
from inspector.core.records import Frame
from inspector.sources.base import FrameSource, SourceState
from inspector.sources.folder import path_key, read_error_message, unchanged_since_recorded
from inspector.sources.registry import SourceKind, folder_and_options, register_source

Signature = tuple[int, int]  # (size in bytes, mtime in ns)

_natural = natsort_keygen()


@dataclass
class _Candidate:
    path: str
    signature: Signature
    failures: int = 0


class HotFolderSource(FrameSource):
    """Images appearing in a folder, in order of arrival.

    Polling happens inside :meth:`read` on the consumer's thread; no thread
    of its own. New files seen in the same poll are ordered by modification
    time, then by name.

    Args:
        path: The folder to watch.
        poll_interval: Seconds between two looks at the folder.
        recursive: Also watch sub-folders.
        include_existing: Also read the files already there at :meth:`open`
            (in natural order); by default only new files are read.
        skip_paths: Files present at :meth:`open` not to read (e.g. done in an
            earlier session); read after all if they change later.
        max_attempts: Reads of an unchanged file before it is recorded as failed.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        poll_interval: float = 0.5,
        recursive: bool = False,
        include_existing: bool = False,
        skip_paths: Iterable[str | os.PathLike] | None = None,
        max_attempts: int = 3,
    ) -> None:
        super().__init__()
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        self.path = os.path.abspath(os.fspath(path))
        self.poll_interval = poll_interval
        self.recursive = recursive
        self.include_existing = include_existing
        self.max_attempts = max(1, max_attempts)
        self._skip = {path_key(p) for p in (skip_paths or ())}
        self._recorded: dict[str, str | None] = {}
        self._done: dict[str, Signature] = {}
        self._candidates: dict[str, _Candidate] = {}
        self._ready: deque[_Candidate] = deque()
        self._last_poll = 0.0
        self._next_id = 0
        self._stop = threading.Event()

    @property
    def is_real_time(self) -> bool:
        """False: every file is read, none is dropped."""
        return False

    @property
    def finished(self) -> bool:
        """Always False: a hot folder runs until released."""
        return False

    def describe(self) -> str:
        """``"hotfolder:/absolute/path"``."""
        return f"hotfolder:{self.path}"

    def resume_from(self, recorded: Mapping[str, str | None]) -> None:
        """With ``include_existing``: files already there and recorded with unchanged content are
        skipped (counted in :attr:`resumed`); call before :meth:`open`."""
        self._recorded = {path_key(p): digest for p, digest in recorded.items()}

    def open(self) -> None:
        """Take note of the files already there and start watching."""
        self.resumed = 0
        self._stop.clear()
        self._done.clear()
        self._candidates.clear()
        self._ready.clear()
        found = self._scan()
        if found is None:
            self._last_poll = time.monotonic()
            return
        for key in sorted(found, key=lambda k: _natural(found[k][0])):
            file_path, signature = found[key]
            resumed = self.include_existing and bool(self._recorded) and unchanged_since_recorded(
                file_path, self._recorded)
            self.resumed += int(resumed)
            if self.include_existing and key not in self._skip and not resumed:
                self._candidates[key] = _Candidate(file_path, signature)
            else:
                self._done[key] = signature
        self._last_poll = time.monotonic()
        self._set_state(SourceState.RUNNING, f"watching {self.path}")

    def read(self, timeout: float | None = None) -> Frame | None:
        """Return the next arrived image, waiting up to ``timeout`` seconds (``None``: until one
        arrives or :meth:`release` is called). Returns ``None`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while not self._stop.is_set():
            if not self._ready and time.monotonic() - self._last_poll >= self.poll_interval:
                self._poll()
            while self._ready:
                frame = self._read_candidate(self._ready.popleft())
                if frame is not None:
                    return frame
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return None
            wait = self._last_poll + self.poll_interval - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            if self._stop.wait(max(wait, 0.0)):
                break
            if deadline is not None and time.monotonic() >= deadline:
                return None
        return None

    def release(self) -> None:
        """Stop watching; wakes a :meth:`read` blocked in another thread."""
        self._stop.set()
        self._ready.clear()
        self._candidates.clear()
        self._set_state(SourceState.CLOSED, "")

    # -- polling -------------------------------------------------------------

    def _poll(self) -> None:
        self._last_poll = time.monotonic()
        found = self._scan()
        if found is None:
            return
        if self.state != SourceState.RUNNING:
            self._set_state(SourceState.RUNNING, f"watching {self.path}")
        # Files waiting since an earlier poll become ready once unchanged.
        for key, candidate in list(self._candidates.items()):
            if key not in found:
                del self._candidates[key]  # gone before it settled, e.g. a temp file
                continue
            signature = found[key][1]
            if signature == candidate.signature and signature[0] > 0:
                del self._candidates[key]
                self._ready.append(candidate)
            elif signature != candidate.signature:
                candidate.signature = signature
                candidate.failures = 0
        waiting = {path_key(c.path) for c in self._ready}
        new = [
            key
            for key, (_, signature) in found.items()
            if key not in self._candidates
            and key not in waiting
            and self._done.get(key) != signature
        ]
        new.sort(key=lambda k: (found[k][1][1], _natural(found[k][0])))
        for key in new:
            self._candidates[key] = _Candidate(*found[key])
        # Forget files that were moved away, so the memory stays bounded.
        self._done = {key: sig for key, sig in self._done.items() if key in found}

    def _scan(self) -> dict[str, tuple[str, Signature]] | None:
        """Image files in the folder by path key; ``None`` (and state LOST) if unreachable."""
        found: dict[str, tuple[str, Signature]] = {}
        try:
            if self.recursive:
                for root, dirs, files in os.walk(self.path, onerror=self._walk_error):
                    dirs[:] = [d for d in dirs if not d.startswith(".")]
                    for name in files:
                        self._add_entry(found, os.path.join(root, name), name)
            else:
                with os.scandir(self.path) as entries:
                    for entry in entries:
                        if entry.is_file():
                            self._add_entry(found, entry.path, entry.name)
        except OSError as exc:
            self._set_state(SourceState.LOST, f"hot folder not reachable: {exc.strerror or exc}")
            return None
        return found

    @staticmethod
    def _add_entry(found: dict[str, tuple[str, Signature]], file_path: str, name: str) -> None:
        if name.startswith(".") or not is_image_path(name):
            return
        try:
            stat = os.stat(file_path)
        except OSError:
            return  # vanished between listing and stat
        found[path_key(file_path)] = (file_path, (stat.st_size, stat.st_mtime_ns))

    def _read_candidate(self, candidate: _Candidate) -> Frame | None:
        key = path_key(candidate.path)
        digest = None
        try:
            digest = file_digest(candidate.path)
            image = read_image(candidate.path)
        except (ImageReadError, OSError) as exc:
            message = read_error_message(exc, candidate.path)
        except Exception as exc:  # a decoder bug must not stop the watch
            message = f"unexpected error: {exc}"
        else:
            self._done[key] = candidate.signature
            frame = Frame(
                image=image, source=self.describe(), frame_id=self._next_id, path=candidate.path
            )
            self._next_id += 1
            if digest is not None:
                self._note_content_hash(frame, digest)
            return frame
        if not os.path.exists(candidate.path):
            self._add_failure(candidate.path, "file disappeared before it could be read")
            return None
        candidate.failures += 1
        if candidate.failures >= self.max_attempts:
            self._done[key] = candidate.signature
            self._add_failure(candidate.path, message, content_hash=file_digest(candidate.path))
        else:
            self._candidates[key] = candidate  # maybe still being written: retry once settled
        return None

    def _walk_error(self, error: OSError) -> None:
        # Only the watched folder itself being unreachable matters; skip unreadable sub-folders.
        if error.filename is None or path_key(error.filename) == path_key(self.path):
            raise error


_SPEC_OPTIONS = {"recursive": "recursive", "existing": "include_existing", "poll": "poll_interval"}


def _build_hotfolder(value: str, spec: str, options: dict) -> HotFolderSource:
    path, spec_options = folder_and_options(value, _SPEC_OPTIONS, spec, "hotfolder")
    return HotFolderSource(path, **{**spec_options, **options})


register_source(SourceKind("hotfolder", "Hot folder", "path", "hotfolder:PATH[?existing=1&poll=SECONDS]",
                           "folder watched for new images", "folder", _build_hotfolder, order=40))
