"""The source picker: camera index, video file, folder, hot folder or stream, as a spec string."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLineEdit, QPushButton, QStyle, QWidget

KINDS = (("camera", "Camera"), ("video", "Video file"), ("folder", "Folder"), ("hotfolder", "Hot folder"),
         ("stream", "Stream"))
_PLACEHOLDERS = {"camera": "camera index, e.g. 0", "video": "video file", "folder": "folder of images",
                 "hotfolder": "folder watched for new images", "stream": "rtsp://host/path"}


class SourceBar(QWidget):
    """Picks a source and hands out its spec (``camera:0``, ``folder:/data/lot7``, ...).

    Signals:
        open_requested(str): the operator pressed Enter or Open; the spec.
    """

    open_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = QComboBox()
        for key, label in KINDS:
            self.kind.addItem(label, key)
        self.value = QLineEdit()
        self.value.setMinimumWidth(170)
        self.browse_button = QPushButton()
        self.browse_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon))
        self.browse_button.setToolTip("Browse")
        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Open the source (paused; Space starts)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.kind)
        layout.addWidget(self.value, 1)
        layout.addWidget(self.browse_button)
        layout.addWidget(self.open_button)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.browse_button.clicked.connect(self.browse)
        self.open_button.clicked.connect(self._open)
        self.value.returnPressed.connect(self._open)
        self._kind_changed()

    def spec(self) -> str:
        """The spec of what is entered ("" if nothing is)."""
        value = self.value.text().strip()
        return f"{self.kind.currentData()}:{value}" if value else ""

    def set_spec(self, spec: str) -> None:
        """Show ``spec`` (unknown kinds are ignored)."""
        kind, _, value = spec.partition(":")
        index = self.kind.findData(kind)
        if index >= 0:
            self.kind.setCurrentIndex(index)
            self.value.setText(value)

    def browse(self) -> None:
        """Choose a file or folder for the current kind."""
        kind = self.kind.currentData()
        if kind == "video":
            chosen = QFileDialog.getOpenFileName(self, "Video file", self.value.text(),
                                                 "Videos (*.mp4 *.avi *.mkv *.mov);;All files (*)")[0]
        elif kind in ("folder", "hotfolder"):
            chosen = QFileDialog.getExistingDirectory(self, "Folder", self.value.text())
        else:
            return
        if chosen:
            self.value.setText(chosen)

    def _kind_changed(self) -> None:
        kind = self.kind.currentData()
        self.value.setPlaceholderText(_PLACEHOLDERS[kind])
        self.browse_button.setEnabled(kind in ("video", "folder", "hotfolder"))

    def _open(self) -> None:
        spec = self.spec()
        if spec:
            self.open_requested.emit(spec)
