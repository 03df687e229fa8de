"""Running the headless station: ``inspector serve``'s event loop, signals and exit code.

The service itself (:class:`~inspector.workers.line_service.LineService`) wires the
station to MQTT, OPC UA and triggers; this module owns the process around it: a Qt
core application, SIGTERM/SIGINT handled inside the event loop, and the exit code.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from typing import Any, Callable

from PySide6.QtCore import QCoreApplication, QSocketNotifier

from inspector.workers.line_service import LineService, ServeOptions

__all__ = ["ServeOptions", "run_service"]


def run_service(options: ServeOptions, source_factory: Callable[[str], Any] | None = None) -> int:
    """Run the headless station until SIGTERM/SIGINT or ``--quit-after``; returns the exit code."""
    logging.getLogger("asyncua").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
    app.setApplicationName("Inspector")
    service = LineService(options, source_factory)
    restore = _install_signal_handlers(service)
    try:
        service.start()
        app.exec()
    finally:
        restore()
    return service.exit_code


def _install_signal_handlers(service: LineService) -> Callable[[], None]:
    """SIGTERM/SIGINT -> :meth:`LineService.request_stop` in the Qt loop (a wake-up socket wakes it)."""
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read)

    def drain() -> None:
        try:
            while reader.recv(64):
                pass
        except OSError:
            pass

    notifier.activated.connect(drain)
    previous_fd = signal.set_wakeup_fd(writer.fileno())
    received: list[int] = []

    def handler(number: int, _frame: Any) -> None:
        received.append(number)
        service.request_stop(f"{signal.Signals(number).name} received")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(previous_fd)
        notifier.setEnabled(False)
        reader.close()
        writer.close()

    return restore
