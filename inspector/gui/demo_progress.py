"""The first-start progress dialog: what the demo build is doing, with Cancel.

The first start builds the demo (images, then a fitted model: a few minutes on a
small CPU). The dialog opens with the model worker's first progress report, so
a demo that is already built shows none, and closes when the demo is loaded,
failed or was cancelled. Cancel stops the build at its next step; the window
then says how to go on (open a model).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QProgressDialog, QWidget


class DemoProgress(QObject):
    """Shows the demo build of ``station``'s model worker in a progress dialog.

    Args:
        station: The :class:`~inspector.workers.station.Station`.
        window: The dialog's parent.
    """

    def __init__(self, station, window: QWidget) -> None:
        super().__init__(window)
        self.station = station
        self.window = window
        self.dialog: QProgressDialog | None = None
        self.cancelled = False
        models = station.models
        models.demo_step.connect(self._on_step)
        models.demo_ready.connect(self._close)
        models.load_failed.connect(self._close)
        models.demo_cancelled.connect(self._on_cancelled)

    def _open(self) -> QProgressDialog:
        dialog = QProgressDialog("Preparing the demo (first start only)…", "Cancel", 0, 100, self.window)
        dialog.setWindowTitle("Inspector — first start")
        dialog.setWindowModality(Qt.WindowModality.NonModal)
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.setMinimumWidth(460)
        dialog.canceled.connect(self.cancel)
        dialog.show()
        self.dialog = dialog
        return dialog

    def cancel(self) -> None:
        """Stop the demo build (the model worker stops at its next step)."""
        self.station.models.cancel_demo()
        if self.dialog is not None:
            self.dialog.setLabelText("Cancelling…")

    def _on_step(self, done: int, total: int, message: str) -> None:
        dialog = self.dialog or self._open()
        dialog.setMaximum(max(total, 1))
        dialog.setValue(min(done, max(total, 1)))
        dialog.setLabelText(f"Preparing the demo (first start only): {message}\n"
                            "It fits a model on 50 generated images; later starts open at once.")

    def _on_cancelled(self) -> None:
        self.cancelled = True
        self._close()
        self.station.message.emit("demo preparation cancelled: open a model (O) or restart to build the demo")

    def _close(self, *_args) -> None:
        dialog, self.dialog = self.dialog, None
        if dialog is not None:
            dialog.canceled.disconnect(self.cancel)
            dialog.close()
            dialog.deleteLater()
