"""A line edit with a Browse button for a folder or a file."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QPushButton, QWidget


class PathField(QWidget):
    """A path typed in or chosen with a dialog.

    Args:
        mode: ``"folder"``, ``"open"`` (an existing file) or ``"save"`` (a file to write).
        placeholder: Grey hint text.
        file_filter: Name filter for the file dialogs, e.g. ``"Models (*.safetensors)"``.
        parent: Qt parent.

    Signals:
        path_changed(str): the text changed (typed or chosen).
    """

    path_changed = Signal(str)

    def __init__(self, mode: str = "folder", placeholder: str = "", file_filter: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if mode not in ("folder", "open", "save"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.file_filter = file_filter
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.button = QPushButton("Browse…")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.button)
        self.button.clicked.connect(self.browse)
        self.edit.textChanged.connect(self.path_changed)

    @property
    def path(self) -> str:
        """The path, stripped ("" when empty)."""
        return self.edit.text().strip()

    def set_path(self, path: str) -> None:
        """Set the path text."""
        self.edit.setText(path)

    def browse(self) -> None:
        """Open the matching file dialog."""
        if self.mode == "folder":
            chosen = QFileDialog.getExistingDirectory(self, "Choose a folder", self.path)
        elif self.mode == "open":
            chosen = QFileDialog.getOpenFileName(self, "Choose a file", self.path, self.file_filter)[0]
        else:
            chosen = QFileDialog.getSaveFileName(self, "Save as", self.path, self.file_filter)[0]
        if chosen:
            self.set_path(chosen)
