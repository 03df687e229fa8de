"""Where the station window opens: on the whole screen the first time, where it was left afterwards."""

from __future__ import annotations

import base64
import logging

from PySide6.QtCore import QByteArray
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

logger = logging.getLogger(__name__)


def fit_to_screen(window: QWidget) -> None:
    """Without a saved geometry, open on the whole available screen (less a margin for frames)."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        window.resize(1440, 900)
        return
    area = screen.availableGeometry()
    window.resize(max(800, area.width() - 16), max(600, area.height() - 40))
    window.move(area.topLeft())


def restore_geometry(window: QWidget, saved: str | None) -> None:
    """Put the window back where :func:`saved_geometry` found it (an unusable value is ignored)."""
    if not saved:
        return
    try:
        window.restoreGeometry(QByteArray(base64.b64decode(saved)))
    except (ValueError, TypeError):
        logger.warning("ignoring unusable window geometry in settings")


def saved_geometry(window: QWidget) -> str:
    """The window's geometry as text for the settings file."""
    return base64.b64encode(bytes(window.saveGeometry())).decode("ascii")
