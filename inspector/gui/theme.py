"""The station's look: a dark, high-contrast theme readable at arm's length from the bench."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont, QImage, QPalette, QPixmap
from PySide6.QtWidgets import QApplication

OK_COLOR = "#1fa35b"
NG_COLOR = "#e03131"
IDLE_COLOR = "#3a414c"
WARN_COLOR = "#f59f00"
ACCENT = "#4dabf7"
BACKGROUND = "#1b1f24"
PANEL = "#242a31"
TEXT = "#e9ecef"
MUTED = "#98a2ad"

STYLESHEET = f"""
QMainWindow, QDialog {{ background: {BACKGROUND}; }}
QWidget {{ color: {TEXT}; font-size: 10pt; }}
QGroupBox {{ border: 1px solid #39414b; border-radius: 6px; margin-top: 14px; padding: 8px 8px 6px 8px;
             background: {PANEL}; font-weight: 600; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; color: {MUTED}; }}
QToolBar {{ background: {PANEL}; border: none; border-bottom: 1px solid #39414b; spacing: 6px; padding: 4px; }}
QToolButton {{ padding: 5px 9px; border-radius: 4px; }}
QToolButton:hover {{ background: #323a44; }}
QToolButton:checked {{ background: #2f4a63; }}
QPushButton {{ background: #323a44; border: 1px solid #454e5a; border-radius: 4px; padding: 5px 12px; }}
QPushButton:hover {{ background: #3b4450; }}
QPushButton:disabled {{ color: #69727d; }}
QPushButton#primary {{ background: #1c6fb8; border-color: #2a86d6; font-weight: 600; }}
QLineEdit, QComboBox, QSpinBox, QDoubleSpinBox {{ background: #14181c; border: 1px solid #454e5a;
             border-radius: 4px; padding: 3px 6px; selection-background-color: {ACCENT}; }}
QTabWidget::pane {{ border: none; }}
QTabBar::tab {{ background: {PANEL}; padding: 7px 18px; border-top-left-radius: 5px; border-top-right-radius: 5px;
                margin-right: 2px; color: {MUTED}; }}
QTabBar::tab:selected {{ background: #303844; color: {TEXT}; }}
QTableView {{ background: #14181c; alternate-background-color: #1a1f25; gridline-color: #2c333b;
              selection-background-color: #2f4a63; }}
QHeaderView::section {{ background: {PANEL}; padding: 4px; border: none; border-right: 1px solid #39414b; }}
QStatusBar {{ background: {PANEL}; border-top: 1px solid #39414b; }}
QStatusBar QLabel {{ padding: 0 8px; }}
QProgressBar {{ border: 1px solid #454e5a; border-radius: 4px; text-align: center; background: #14181c; }}
QProgressBar::chunk {{ background: {ACCENT}; }}
QSlider::groove:horizontal {{ height: 6px; background: #39414b; border-radius: 3px; }}
QSlider::handle:horizontal {{ width: 16px; margin: -6px 0; border-radius: 8px; background: {ACCENT}; }}
"""


def apply_theme(app: QApplication) -> None:
    """Install the palette, style sheet, font and pyqtgraph options on ``app``."""
    app.setStyle("Fusion")
    palette = QPalette()
    for role, color in (
        (QPalette.ColorRole.Window, BACKGROUND),
        (QPalette.ColorRole.WindowText, TEXT),
        (QPalette.ColorRole.Base, "#14181c"),
        (QPalette.ColorRole.AlternateBase, "#1a1f25"),
        (QPalette.ColorRole.Text, TEXT),
        (QPalette.ColorRole.Button, "#323a44"),
        (QPalette.ColorRole.ButtonText, TEXT),
        (QPalette.ColorRole.Highlight, ACCENT),
        (QPalette.ColorRole.HighlightedText, "#0b0d10"),
        (QPalette.ColorRole.ToolTipBase, PANEL),
        (QPalette.ColorRole.ToolTipText, TEXT),
    ):
        palette.setColor(role, QColor(color))
    app.setPalette(palette)
    app.setStyleSheet(STYLESHEET)
    font = QFont(app.font())
    font.setPointSize(10)
    app.setFont(font)
    configure_pyqtgraph()


def configure_pyqtgraph() -> None:
    """Row-major images (numpy/OpenCV order) and the dark plot colours.

    Antialiasing stays off: it multiplies the cost of every plot repaint on the GUI thread.
    """
    pg.setConfigOptions(imageAxisOrder="row-major", background=BACKGROUND, foreground=MUTED, antialias=False)


def to_pixmap(image: np.ndarray) -> QPixmap:
    """An ``HxWx3`` uint8 RGB array as a QPixmap (copied, so the array may go)."""
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    qimage = QImage(image.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(qimage.copy())
