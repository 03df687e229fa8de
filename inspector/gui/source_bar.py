"""The source picker: one entry per registered source kind (camera, video, folder, ...), as a spec string."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLineEdit, QPushButton, QStyle, QWidget

from inspector.sources.registry import SourceKind, source_kinds


class SourceBar(QWidget):
    """Picks a source and hands out its spec (``camera:0``, ``folder:/data/lot7``, ...).

    Signals:
        open_requested(str): the operator pressed Enter or Open; the spec.
    """

    open_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = QComboBox()
        self._kinds: dict[str, SourceKind] = {kind.name: kind for kind in source_kinds()}
        for kind in self._kinds.values():
            self.kind.addItem(kind.label, kind.name)
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
        kind = self._kinds[self.kind.currentData()]
        if kind.browse == "file":
            chosen = QFileDialog.getOpenFileName(self, kind.label, self.value.text(),
                                                 "Videos (*.mp4 *.avi *.mkv *.mov);;All files (*)")[0]
        elif kind.browse == "folder":
            chosen = QFileDialog.getExistingDirectory(self, kind.label, self.value.text())
        else:
            return
        if chosen:
            self.value.setText(chosen)

    def _kind_changed(self) -> None:
        kind = self._kinds[self.kind.currentData()]
        self.value.setPlaceholderText(kind.placeholder)
        self.browse_button.setEnabled(kind.browse is not None)

    def _open(self) -> None:
        spec = self.spec()
        if spec:
            self.open_requested.emit(spec)
