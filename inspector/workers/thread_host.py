"""Hosting long-lived worker QObjects on their own QThreads, and shutting them down cleanly.

Every worker of the station lives on a :class:`WorkerThread`: one QThread per
worker (or per small family of workers) for the whole session. The registry of
running hosts lets tests fail when a thread outlives the window that started it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref

from PySide6.QtCore import QMetaObject, QObject, Qt, QThread

logger = logging.getLogger(__name__)

_RUNNING: "weakref.WeakSet[WorkerThread]" = weakref.WeakSet()


class WorkerThread:
    """A QThread that owns one or more worker QObjects until :meth:`shutdown`.

    Worker threads run at a lower priority than the GUI thread, so that a busy
    worker (and the math library threads it starts) never takes the CPU from
    painting.

    Args:
        name: Thread name (shown by debuggers and in leak reports).
        workers: QObjects without a parent; they are moved to the thread.
        nice: How much lower the priority is (Linux nice increment).
    """

    def __init__(self, name: str, *workers: QObject, nice: int = 5) -> None:
        self.name = name
        self.thread = QThread()
        self.thread.setObjectName(name)
        self.workers = list(workers)
        for worker in self.workers:
            if worker.parent() is not None:
                raise ValueError(f"{type(worker).__name__} must have no parent to move to {name}")
            worker.moveToThread(self.thread)
            # Deleted on their own thread as it ends (the pattern the Qt docs give).
            self.thread.finished.connect(worker.deleteLater)
        if nice and sys.platform.startswith("linux"):
            # Runs on the new thread (a direct connection to a plain function); threads it starts inherit it.
            self.thread.started.connect(lambda: _renice_current_thread(nice), Qt.ConnectionType.DirectConnection)
        self.thread.start(QThread.Priority.LowPriority)
        _RUNNING.add(self)

    def is_running(self) -> bool:
        """Whether the underlying QThread still runs."""
        return self.thread.isRunning()

    def call_blocking(self, worker: QObject, slot: str) -> None:
        """Run ``worker.slot()`` on the worker thread and wait until it has returned."""
        if not self.thread.isRunning():
            return
        QMetaObject.invokeMethod(worker, slot, Qt.ConnectionType.BlockingQueuedConnection)

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Stop the event loop and wait for the thread; the workers are deleted as it ends.

        Workers that define a ``shutdown`` slot get it called (blocking) first,
        on their own thread, so they can release devices and database handles.

        Returns:
            True if the thread ended within ``timeout_ms``.
        """
        if self.thread.isRunning():
            for worker in self.workers:
                if worker.metaObject().indexOfMethod("shutdown()") >= 0:
                    self.call_blocking(worker, "shutdown")
            self.thread.quit()
            ended = self.thread.wait(timeout_ms)
        else:
            ended = True
        if not ended:
            logger.warning("worker thread %s did not end within %d ms", self.name, timeout_ms)
            return False
        _RUNNING.discard(self)
        self.workers.clear()
        return True


def _renice_current_thread(increment: int) -> None:
    """Lower the calling thread's scheduling priority (Linux: threads have their own nice value)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except (AttributeError, OSError) as exc:
        logger.debug("cannot lower the worker thread priority: %s", exc)


def running_worker_threads() -> list[str]:
    """Names of worker threads started and not yet shut down (for leak checks)."""
    return sorted(host.name for host in list(_RUNNING) if host.is_running())


def shutdown_worker_threads() -> None:
    """Shut down every worker thread still running (after a leak check has reported them)."""
    for host in list(_RUNNING):
        host.shutdown()
