"""Progress bars on stderr for the command line (silenced by ``--quiet``)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

from inspector.core.progress import Progress


@contextmanager
def progress_bar(quiet: bool, description: str = "") -> Iterator[Progress]:
    """A :class:`Progress` that draws a tqdm bar on stderr, one bar per message."""
    if quiet or not sys.stderr:
        yield Progress(None)
        return
    from tqdm import tqdm

    state: dict = {"bar": None, "message": None}

    def update(done: int, total: int, message: str) -> None:
        if message != state["message"] or state["bar"] is None:
            if state["bar"] is not None:
                state["bar"].close()
            label = f"{description}: {message}" if description and message else (message or description)
            state["bar"] = tqdm(total=total, desc=label, file=sys.stderr, leave=False, dynamic_ncols=True,
                                unit="img" if "image" in message or "feature" in message else "it")
            state["message"] = message
        bar = state["bar"]
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield Progress(update)
    finally:
        if state["bar"] is not None:
            state["bar"].close()
