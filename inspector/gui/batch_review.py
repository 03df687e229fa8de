"""Batch review: score a folder (resumable), then sort, filter and inspect the results; export them."""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QSize, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from inspector.gui.batch_table import FILE, PATH_ROLE, SCORE, THUMB, TIME, VERDICT, BatchFilter, BatchTableModel
from inspector.gui.frame_view import FrameView
from inspector.gui.path_field import PathField
from inspector.gui.theme import MUTED


class BatchReview(QWidget):
    """The batch review tab.

    Args:
        station: The :class:`~inspector.workers.station.Station` (its batch worker does the work).
        parent: Qt parent.
    """

    def __init__(self, station, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.station = station
        self.running = False
        self._resumed = 0
        self.folder = PathField("folder", "folder of images to review")
        self.run_button = QPushButton("Run batch")
        self.run_button.setObjectName("primary")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m")
        top = QHBoxLayout()
        top.addWidget(QLabel("Folder"))
        top.addWidget(self.folder, 1)
        top.addWidget(self.run_button)
        top.addWidget(self.stop_button)
        top.addWidget(self.progress)

        self.filter_text = QLineEdit()
        self.filter_text.setPlaceholderText("filter by file name")
        self.filter_verdict = QComboBox()
        self.filter_verdict.addItems(["All", "NG", "OK", "ERROR"])
        self.summary = QLabel("")
        self.summary.setStyleSheet(f"color: {MUTED};")
        self.csv_button = QPushButton("Export CSV…")
        self.html_button = QPushButton("Export HTML report…")
        filters = QHBoxLayout()
        filters.addWidget(self.filter_text, 1)
        filters.addWidget(self.filter_verdict)
        filters.addWidget(self.summary)
        filters.addStretch(1)
        filters.addWidget(self.csv_button)
        filters.addWidget(self.html_button)

        self.model = BatchTableModel(self)
        self.proxy = BatchFilter(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(SCORE, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setIconSize(QSize(56, 56))
        self.table.verticalHeader().setDefaultSectionSize(60)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(FILE, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(THUMB, 64)
        self.table.setColumnWidth(VERDICT, 70)
        self.table.setColumnWidth(SCORE, 80)
        self.table.setColumnWidth(TIME, 150)
        self.detail = FrameView()
        self.detail_label = QLabel("Select a row to see the image and its defect map")
        self.detail_label.setStyleSheet(f"color: {MUTED};")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.detail, 1)
        right_layout.addWidget(self.detail_label)
        splitter = QSplitter()
        splitter.addWidget(self.table)
        splitter.addWidget(right)
        splitter.setSizes([560, 640])

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(filters)
        layout.addWidget(splitter, 1)

        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.station.cancel_batch)
        self.filter_text.textChanged.connect(self.proxy.set_text)
        self.filter_verdict.currentTextChanged.connect(
            lambda text: self.proxy.set_verdict("" if text == "All" else text))
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.csv_button.clicked.connect(lambda: self._export("csv"))
        self.html_button.clicked.connect(lambda: self._export("html"))
        worker = station.batch
        worker.batch_started.connect(self._on_started)
        worker.rows_ready.connect(self._on_rows)
        worker.batch_progress.connect(self._on_progress)
        worker.batch_finished.connect(self._on_finished)
        worker.detail_ready.connect(self._on_detail)
        worker.export_finished.connect(self._on_exported)
        station.threshold_changed.connect(self.set_threshold)
        self.set_threshold(station.threshold)

    def run(self, folder: str | None = None) -> None:
        """Start (or resume) the batch on ``folder`` (default: the folder field)."""
        folder = folder or self.folder.path
        if not folder:
            self.summary.setText("choose a folder first")
            return
        self.folder.set_path(folder)
        self.model.clear()
        self.detail.clear_frame()
        self.running = True
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.station.run_batch(folder)

    def set_threshold(self, threshold: float) -> None:
        """Re-decide the table at ``threshold``."""
        self.model.set_threshold(threshold)
        self.proxy.invalidate()
        self._update_summary()

    def export_csv(self, path: str) -> None:
        """Write the table as CSV (on the batch worker)."""
        self.station.export_csv(path)

    def export_html(self, path: str) -> None:
        """Write the HTML report with NG images and overlays embedded (on the batch worker)."""
        self.station.export_html(path)

    # -- worker answers ----------------------------------------------------------------------

    def _on_started(self, source: str, total: int, resumed: int) -> None:
        self._resumed = resumed
        self.progress.setRange(0, max(total + resumed, 1))
        self.progress.setValue(resumed)
        note = f", {resumed} already done (resumed)" if resumed else ""
        self.summary.setText(f"{total} to score{note}")

    def _on_rows(self, rows: list) -> None:
        self.model.add_rows(rows)
        self._update_summary()

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total + self._resumed, 1))
        self.progress.setValue(done + self._resumed)

    def _on_finished(self, summary: str) -> None:
        self.running = False
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self._update_summary(summary)

    def _on_detail(self, path: str, image, heatmap) -> None:
        self.detail.show_frame(image, heatmap, caption=path.rsplit("/", 1)[-1], frame_id=path)
        self.detail_label.setText(path)

    def _on_exported(self, path: str) -> None:
        self.summary.setText(f"written {path}")

    def _selection_changed(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        indexes = selected.indexes()
        if indexes:
            path = self.proxy.data(indexes[0], PATH_ROLE)
            if path:
                self.detail_label.setText(f"{path} (computing map…)")
                self.station.request_detail(path)

    def _export(self, kind: str) -> None:
        if kind == "csv":
            path = QFileDialog.getSaveFileName(self, "Export CSV", "batch.csv", "CSV (*.csv)")[0]
            if path:
                self.export_csv(path)
        else:
            path = QFileDialog.getSaveFileName(self, "Export HTML report", "report.html", "HTML (*.html)")[0]
            if path:
                self.export_html(path)

    def _update_summary(self, prefix: str = "") -> None:
        counts = self.model.counts()
        text = f"OK {counts['OK']}   NG {counts['NG']}   errors {counts['ERROR']}"
        self.summary.setText(f"{prefix}   {text}" if prefix else text)
