"""Batch review: score a folder (resumable), then sort, filter and inspect the results; export them.

*Run batch* resumes: files already scored by this model with the same bytes are read
back. *Re-score all* scores the whole folder again and *Re-score selected* the selected
rows, ignoring earlier rows (which stay in the database as history); the table
shows the newest verdict per file.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QPoint, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QMenu,
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

    Signals:
        rescore_all_requested(str): a folder to score again from the start (to the batch worker).
        rescore_files_requested(str, list): a folder and the files of it to score again.
        mark_requested(list, str): ``(path, verdict)`` of rows the operator corrects, and the label
            (``"good"``: false rejects; ``"bad"``: escapes), from the table's context menu.
    """

    rescore_all_requested = Signal(str)
    rescore_files_requested = Signal(str, list)
    mark_requested = Signal(list, str)

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
        self.rescore_button = QPushButton("Re-score all")
        self.rescore_button.setToolTip("score every file again, ignoring earlier results (kept as history)")
        self.rescore_selected_button = QPushButton("Re-score selected")
        self.rescore_selected_button.setToolTip("score the selected files again")
        self.rescore_selected_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m")
        top = QHBoxLayout()
        top.addWidget(QLabel("Folder"))
        top.addWidget(self.folder, 1)
        top.addWidget(self.run_button)
        top.addWidget(self.rescore_button)
        top.addWidget(self.rescore_selected_button)
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
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
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

        self.run_button.clicked.connect(lambda: self.run())
        self.rescore_button.clicked.connect(lambda: self.rescore_all())
        self.rescore_selected_button.clicked.connect(self.rescore_selected)
        self.stop_button.clicked.connect(self.station.cancel_batch)
        self.filter_text.textChanged.connect(self.proxy.set_text)
        self.filter_verdict.currentTextChanged.connect(
            lambda text: self.proxy.set_verdict("" if text == "All" else text))
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.csv_button.clicked.connect(lambda: self._export("csv"))
        self.html_button.clicked.connect(lambda: self._export("html"))
        worker = station.batch
        self.rescore_all_requested.connect(worker.rescore_all)
        self.rescore_files_requested.connect(worker.rescore_files)
        worker.batch_started.connect(self._on_started)
        worker.rows_ready.connect(self._on_rows)
        worker.batch_progress.connect(self._on_progress)
        worker.batch_finished.connect(self._on_finished)
        worker.detail_ready.connect(self._on_detail)
        worker.export_finished.connect(self._on_exported)
        station.threshold_changed.connect(self.set_threshold)
        station.model_changed.connect(self._on_model_changed)
        if station.model is not None:
            self.model.set_model_hash(station.model.model_hash)
        self.set_threshold(station.threshold)

    def run(self, folder: str | None = None) -> None:
        """Start (or resume) the batch on ``folder`` (default: the folder field)."""
        folder = self._begin(folder)
        if folder:
            self.station.run_batch(folder)

    def rescore_all(self, folder: str | None = None) -> None:
        """Score every file of ``folder`` (default: the folder field) again, ignoring earlier rows."""
        folder = self._begin(folder)
        if folder:
            self.rescore_all_requested.emit(folder)

    def rescore_selected(self) -> None:
        """Score the selected rows' files again (the other rows stay)."""
        paths = self.selected_paths()
        folder = self.folder.path
        if not paths or not folder:
            self.summary.setText("select the rows to re-score first")
            return
        folder = self._begin(folder)
        self.rescore_files_requested.emit(folder, paths)

    def selected_paths(self) -> list[str]:
        """The files of the selected rows."""
        rows = self.table.selectionModel().selectedRows()
        return [path for path in (self.proxy.data(index, PATH_ROLE) for index in rows) if path]

    def selected_rows(self) -> list[tuple[str, str]]:
        """``(path, verdict)`` of the selected rows."""
        out = []
        for index in self.table.selectionModel().selectedRows():
            path = self.proxy.data(index, PATH_ROLE)
            verdict = self.proxy.data(index.siblingAtColumn(VERDICT))
            if path:
                out.append((str(path), str(verdict or "")))
        return out

    def context_menu(self) -> QMenu:
        """The table's context menu for the selected rows: mark good, mark defect."""
        menu = QMenu(self)
        rows = self.selected_rows()
        count = f" ({len(rows)} rows)" if len(rows) > 1 else ""
        good = menu.addAction(f"Mark good — a false reject{count}")
        bad = menu.addAction(f"Mark defect — an escape{count}")
        for action, label in ((good, "good"), (bad, "bad")):
            action.setEnabled(bool(rows))
            action.triggered.connect(lambda _=False, lab=label: self.mark_requested.emit(self.selected_rows(), lab))
        return menu

    def _context_menu(self, position: QPoint) -> None:
        index = self.table.indexAt(position)
        if index.isValid() and not self.table.selectionModel().isRowSelected(index.row(), index.parent()):
            self.table.selectRow(index.row())
        menu = self.context_menu()
        menu.exec(self.table.viewport().mapToGlobal(position))
        menu.deleteLater()

    def _begin(self, folder: str | None) -> str:
        folder = folder or self.folder.path
        if not folder:
            self.summary.setText("choose a folder first")
            return ""
        self.folder.set_path(folder)
        self.model.clear()
        self.detail.clear_frame()
        self._set_running(True)
        return folder

    def _set_running(self, running: bool) -> None:
        self.running = running
        for button in (self.run_button, self.rescore_button):
            button.setEnabled(not running)
        self.rescore_selected_button.setEnabled(not running and bool(self.table.selectionModel().hasSelection()))
        self.stop_button.setEnabled(running)

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

    def _on_model_changed(self, model, _path: str) -> None:
        self.model.set_model_hash(model.model_hash)
        self.proxy.invalidate()
        self._update_summary()

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
        self._set_running(False)
        self._update_summary(summary)

    def _on_detail(self, path: str, image, heatmap) -> None:
        self.detail.show_frame(image, heatmap, caption=path.rsplit("/", 1)[-1], frame_id=path)
        self.detail_label.setText(path)

    def _on_exported(self, path: str) -> None:
        self.summary.setText(f"written {path}")

    def _selection_changed(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        self.rescore_selected_button.setEnabled(not self.running and self.table.selectionModel().hasSelection())
        indexes = selected.indexes()
        if indexes:
            path = self.proxy.data(indexes[0], PATH_ROLE)
            if path:
                self.detail_label.setText(f"{path} (computing map…)")
                self.station.request_detail(path)

    def _export(self, kind: str) -> None:
        stale = self.model.stale_count()
        if stale:
            self.summary.setText(f"{stale} rows were scored by another model: Re-score all before exporting")
            return
        if kind == "csv":
            path = QFileDialog.getSaveFileName(self, "Export CSV", "batch.csv", "CSV (*.csv)")[0]
            if path:
                self.export_csv(path)
        else:
            path = QFileDialog.getSaveFileName(self, "Export HTML report", "report.html", "HTML (*.html)")[0]
            if path:
                self.export_html(path)

    def _update_summary(self, prefix: str = "") -> None:
        text = self.model.summary()
        self.summary.setText(f"{prefix}   {text}" if prefix else text)
