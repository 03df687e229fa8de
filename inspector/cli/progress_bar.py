"""Progress on stderr for the command line: a bar on a terminal, periodic lines in a log.

``--quiet`` silences both. When stderr is not a terminal (a log file, a CI job,
a pipe), carriage-return bars would write thousands of updates; instead one line
is printed when a step starts, every :data:`LOG_INTERVAL` seconds while it runs
(``$INSPECTOR_PROGRESS_INTERVAL`` overrides), and when it completes.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from inspector.core.progress import Progress

LOG_INTERVAL = 10.0
"""Seconds between progress lines when stderr is not a terminal."""


@contextmanager
def progress_bar(quiet: bool, description: str = "") -> Iterator[Progress]:
    """A :class:`Progress` that reports on stderr: a tqdm bar per message on a terminal, else log lines."""
    stream = sys.stderr
    if quiet or not stream:
        yield Progress(None)
        return
    if _is_terminal(stream):
        with _terminal_bars(stream, description) as update:
            yield Progress(update)
    else:
        yield Progress(log_lines(stream, description, _interval()))


def log_lines(stream, description: str = "", interval: float = LOG_INTERVAL,
              clock: Callable[[], float] = time.monotonic) -> Callable[[int, int, str], None]:
    """An update callback that writes ``inspector: DESCRIPTION: MESSAGE done/total (pct)`` lines, rate-limited.

    A line is written when the message changes, when a step completes, and
    otherwise at most once per ``interval`` seconds.
    """
    state = {"message": None, "last": -float("inf"), "finished": False}

    def update(done: int, total: int, message: str) -> None:
        now = clock()
        new_step = message != state["message"]
        finished = bool(total) and done >= total
        if new_step:
            state["finished"] = False
        if not (new_step or (finished and not state["finished"]) or now - state["last"] >= interval):
            return
        state.update(message=message, last=now, finished=finished)
        label = ": ".join(part for part in (description, message) if part)
        amount = f"{done}/{total} ({100.0 * done / total:.0f} %)" if total else f"{done}"
        print(f"inspector: {label} {amount}", file=stream, flush=True)

    return update


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("INSPECTOR_PROGRESS_INTERVAL", LOG_INTERVAL)))
    except ValueError:
        return LOG_INTERVAL


@contextmanager
def _terminal_bars(stream, description: str) -> Iterator[Callable[[int, int, str], None]]:
    from tqdm import tqdm

    state: dict = {"bar": None, "message": None}

    def update(done: int, total: int, message: str) -> None:
        if message != state["message"] or state["bar"] is None:
            if state["bar"] is not None:
                state["bar"].close()
            label = f"{description}: {message}" if description and message else (message or description)
            state["bar"] = tqdm(total=total, desc=label, file=stream, leave=False, dynamic_ncols=True,
                                unit="img" if "image" in message or "feature" in message else "it")
            state["message"] = message
        bar = state["bar"]
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        if state["bar"] is not None:
            state["bar"].close()
