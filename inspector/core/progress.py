"""Progress reporting and cancellation for long work, shared by the CLI and the GUI.

Long-running functions take a ``progress`` argument: a :class:`Progress` whose
:meth:`update` is called with (done, total, message). Raising
:class:`Cancelled` from ``update`` (which :class:`Progress` does once
:meth:`cancel` was called) stops the work between steps.
"""

from __future__ import annotations

import threading
from typing import Callable


class Cancelled(Exception):
    """Raised inside long work when the user cancelled it."""


class Progress:
    """A progress sink with a thread-safe cancel flag.

    Args:
        callback: Called as ``callback(done, total, message)``; may be ``None``.
    """

    def __init__(self, callback: Callable[[int, int, str], None] | None = None) -> None:
        self._callback = callback
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop at its next step."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled.is_set()

    def update(self, done: int, total: int, message: str = "") -> None:
        """Report progress; raises :class:`Cancelled` once cancelled."""
        if self._cancelled.is_set():
            raise Cancelled(message or "cancelled")
        if self._callback is not None:
            self._callback(done, total, message)

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancelled, without reporting."""
        if self._cancelled.is_set():
            raise Cancelled("cancelled")


def silent() -> Progress:
    """A progress sink that reports nothing and is never cancelled."""
    return Progress(None)
