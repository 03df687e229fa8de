"""A folder of images read once, in natural order, without skipping any file.

A file that cannot be decoded does not stop the run: it is recorded as a
:class:`~inspector.sources.base.FailedRead` (see
:meth:`~inspector.sources.base.FrameSource.take_failures`) and :meth:`read`
goes on to the next file.

The next files are decoded ahead on one helper thread while the caller inspects
the current one (:data:`READ_AHEAD`), so decoding overlaps inspection instead of
adding to it; frames and failures still come out in order, each exactly once.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from inspector.core.imageio import ImageReadError, file_digest, list_images, read_image
from inspector.core.records import Frame
from inspector.sources.base import FrameSource, SourceState
from inspector.sources.registry import SourceKind, folder_and_options, register_source

READ_AHEAD = 2
"""Files decoded ahead of the one being read (README "Station responsiveness": decoding, 1.3 ms a
300x300 PNG, otherwise ran between inspections on the inspection thread)."""


def path_key(path: str | os.PathLike) -> str:
    """The form in which file paths are compared (absolute, case-folded where the OS is)."""
    return os.path.normcase(os.path.abspath(os.fspath(path)))


def unchanged_since_recorded(path: str | os.PathLike, recorded: Mapping[str, str | None]) -> bool:
    """Whether ``path`` was recorded (see ``resume_from``) and its bytes still have the recorded hash.

    A row recorded without a hash (an older database) counts as unchanged.
    """
    key = path_key(path)
    if key not in recorded:
        return False
    expected = recorded[key]
    return expected is None or file_digest(path) == expected


def read_with_hash(path: str | os.PathLike) -> tuple[object, str | None]:
    """Decode an image file and hash its bytes (the page cache makes the second read cheap).

    Raises:
        ImageReadError, OSError: as :func:`~inspector.core.imageio.read_image`.
    """
    digest = file_digest(path)
    return read_image(path), digest


def _decode(path: Path) -> tuple[object, str | None, str | None]:
    """``(image, digest, None)`` for a readable file, ``(None, digest, message)`` for one that is not."""
    try:
        image, digest = read_with_hash(path)
        return image, digest, None
    except (ImageReadError, OSError) as exc:
        return None, file_digest(path), read_error_message(exc, path)
    except Exception as exc:  # a decoder bug must not end the batch either
        return None, file_digest(path), f"unexpected error: {exc}"


class FolderSource(FrameSource):
    """Every image file under a folder, once, in natural order.

    Reading waits for the consumer: :meth:`read` returns the next file in order
    (decoded ahead on a helper thread, at most :data:`READ_AHEAD` files), so nothing
    is ever dropped. ``Frame.frame_id`` is the file's index
    among all the folder's images (counting files passed in ``skip_paths``), so
    ids stay the same when a batch is resumed. ``Frame.path`` is absolute.

    Args:
        path: The folder.
        recursive: Also read sub-folders.
        skip_paths: Files already done (e.g. ``ResultStore.done_paths(...)``),
            which are not read again.

    A station restarted on the same folder calls :meth:`resume_from` with the files
    already recorded for its model: those whose bytes are unchanged are skipped and
    counted in :attr:`resumed`; a file replaced under the same name is read again.
    The frames carry the SHA-256 of their file (:meth:`take_content_hash`).

    Attributes:
        total: Files to read in this run (after ``skip_paths``); set by :meth:`open`.
        done: Files read or failed so far in this run.
        skipped_paths: Files with no image suffix that were set aside.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        recursive: bool = False,
        skip_paths: Iterable[str | os.PathLike] | None = None,
    ) -> None:
        super().__init__()
        self.path = os.path.abspath(os.fspath(path))
        self.recursive = recursive
        self._skip = {path_key(p) for p in (skip_paths or ())}
        self._recorded: dict[str, str | None] = {}
        self._pending: list[tuple[int, Path]] = []
        self._position = 0
        self._ahead: deque[tuple[int, Path, Future]] = deque()
        self._submitted = 0
        self._decoder: ThreadPoolExecutor | None = None
        self._opened = False
        self.total = 0
        self.done = 0
        self.skipped_paths: list[Path] = []

    @property
    def is_real_time(self) -> bool:
        """Always False: a folder waits for the consumer."""
        return False

    @property
    def finished(self) -> bool:
        """True once every file was read or recorded as failed."""
        return self._opened and self._position >= len(self._pending)

    def describe(self) -> str:
        """``"folder:/absolute/path"``."""
        return f"folder:{self.path}"

    def resume_from(self, recorded: Mapping[str, str | None]) -> None:
        """Skip files already recorded with unchanged content (call before :meth:`open`)."""
        self._recorded = {path_key(p): digest for p, digest in recorded.items()}

    def open(self) -> None:
        """List the folder. A missing folder is recorded as a failure and finishes the source."""
        self._drop_ahead()
        self._pending, self._position, self.done, self.resumed = [], 0, 0, 0
        try:
            listing = list_images([self.path], recursive=self.recursive)
        except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
            self._opened = True
            self.total = 0
            self._add_failure(self.path, f"cannot list folder: {exc}")
            self._set_state(SourceState.FINISHED, f"cannot list {self.path}")
            return
        self.skipped_paths = listing.skipped
        for problem_path, reason in listing.problems:  # unreadable sub-folders, link loops: said, not skipped silently
            self._add_failure(str(problem_path), f"not listed: {reason}")
        self._pending = []
        for index, image in enumerate(listing.images):
            if path_key(image) in self._skip:
                continue
            if self._recorded and unchanged_since_recorded(image, self._recorded):
                self.resumed += 1
                continue
            self._pending.append((index, image))
        self.total = len(self._pending)
        self._opened = True
        self._set_state(SourceState.RUNNING, f"{self.total} images in {self.path}")
        if not self._pending:
            self._set_state(SourceState.FINISHED, "no images to read")

    def read(self, timeout: float | None = None) -> Frame | None:
        """The next readable file, decoded; ``timeout`` is ignored (a folder has no live frames to miss).

        Files that fail on the way are recorded (see :meth:`take_failures`).
        Returns ``None`` only when the folder is exhausted or not opened.
        """
        while self._position < len(self._pending):
            self._fill_ahead()
            index, image_path, decoded = self._ahead.popleft()
            self._position += 1
            self.done += 1
            image, digest, problem = decoded.result()
            if problem is not None:
                self._add_failure(str(image_path), problem, index, digest)
                continue
            frame = Frame(image=image, source=self.describe(), frame_id=index, path=str(image_path))
            if digest is not None:
                self._note_content_hash(frame, digest)
            return frame
        if self._opened and self.state == SourceState.RUNNING:
            self._set_state(SourceState.FINISHED, f"read {self.done} files")
        return None

    def _fill_ahead(self) -> None:
        """Have the next file and up to :data:`READ_AHEAD` after it decoding on the helper thread."""
        if self._decoder is None:
            self._decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="folder-read")
        while self._submitted < len(self._pending) and self._submitted <= self._position + READ_AHEAD:
            index, image_path = self._pending[self._submitted]
            self._ahead.append((index, image_path, self._decoder.submit(_decode, image_path)))
            self._submitted += 1

    def _drop_ahead(self) -> None:
        """Forget files decoded ahead and stop the helper thread."""
        for _, _, decoded in self._ahead:
            decoded.cancel()
        self._ahead.clear()
        self._submitted = 0
        if self._decoder is not None:
            self._decoder.shutdown(wait=False, cancel_futures=True)
            self._decoder = None

    def release(self) -> None:
        """Forget the listing (and the files decoded ahead)."""
        self._drop_ahead()
        self._pending, self._position, self._opened = [], 0, False
        self._set_state(SourceState.CLOSED, "")


def read_error_message(exc: Exception, path: str | os.PathLike) -> str:
    """The text of a read error without the ``"PATH: "`` prefix that ``read_image`` adds."""
    text = str(exc)
    prefix = f"{Path(path)}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


_SPEC_OPTIONS = {"recursive": "recursive"}


def _build_folder(value: str, spec: str, options: dict) -> FolderSource:
    path, spec_options = folder_and_options(value, _SPEC_OPTIONS, spec, "folder")
    return FolderSource(path, **{**spec_options, **options})


register_source(SourceKind("folder", "Folder", "path", "folder:PATH[?recursive=1]", "folder of images", "folder",
                           _build_folder, order=30))
