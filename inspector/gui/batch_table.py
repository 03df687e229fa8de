"""The batch table's model (rows re-decided at the current threshold) and its sort/filter proxy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor, QPixmap

from inspector.core.policy import Threshold
from inspector.gui.theme import MUTED, NG_COLOR, OK_COLOR, to_pixmap
from inspector.reports.batch_report import BatchRow

COLUMNS = ("", "File", "Score", "Verdict", "Time")
THUMB, FILE, SCORE, VERDICT, TIME = range(len(COLUMNS))
SORT_ROLE = Qt.ItemDataRole.UserRole
PATH_ROLE = Qt.ItemDataRole.UserRole + 1
_VERDICT_COLORS = {"OK": OK_COLOR, "NG": NG_COLOR, "ERROR": MUTED}

Index = QModelIndex | QPersistentModelIndex


STALE = "—"
"""Score and verdict of a row scored by another model than the one in use (see :meth:`BatchTableModel.set_model_hash`)."""


class BatchTableModel(QAbstractTableModel):
    """Batch rows, one per file (the newest verdict); verdict and normalized score follow :meth:`set_threshold`.

    A row scored by a model other than the one in use is stale: its score and verdict are
    not shown (grey row, a tooltip says so) until it is scored again.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[BatchRow] = []
        self._index: dict[str, int] = {}  # file key -> row number
        self.threshold = Threshold(1.0)
        self.model_hash: str | None = None  # the model in use (None: every row is shown)
        self._pixmaps: dict[int, QPixmap] = {}

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 - Qt's name
        """Number of files."""
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 - Qt's name
        """Thumbnail, file, score, verdict, time."""
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        """Column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell contents; ``SORT_ROLE`` gives sortable values, ``PATH_ROLE`` the file path."""
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        if role == PATH_ROLE:
            return row.path
        stale = self.is_stale(row)
        verdict = self.verdict(row)
        if role == Qt.ItemDataRole.DisplayRole:
            if column == FILE:
                return Path(row.path).name
            if column == SCORE:
                return f"{row.normalized(self.threshold):.3f}" if np.isfinite(row.raw_score) and not stale else "—"
            if column == VERDICT:
                return verdict
            if column == TIME:
                return row.time.replace("T", " ")[:19]
        elif role == SORT_ROLE:
            if column == SCORE:
                return float(row.raw_score) if np.isfinite(row.raw_score) and not stale else float("-inf")
            if column == VERDICT:
                return verdict
            if column == TIME:
                return row.time
            return Path(row.path).name
        elif role == Qt.ItemDataRole.DecorationRole and column == THUMB:
            return self._pixmap(index.row())
        elif role == Qt.ItemDataRole.ForegroundRole and (stale or column == VERDICT):
            return QBrush(QColor(MUTED if stale else _VERDICT_COLORS[verdict]))
        elif role == Qt.ItemDataRole.ToolTipRole:
            if stale:
                return (f"{row.path}\nscored by another model ({row.model_hash[:12]}), not the one in use: "
                        "Re-score to decide it with the model in use")
            return row.error or row.path
        elif role == Qt.ItemDataRole.TextAlignmentRole and column in (SCORE, VERDICT):
            return int(Qt.AlignmentFlag.AlignCenter)
        return None

    def add_rows(self, rows: Sequence[BatchRow]) -> None:
        """Add rows; a row for a file already in the table replaces it (the newest verdict wins)."""
        fresh: list[BatchRow] = []
        for row in rows:
            key = _key(row.path)
            at = self._index.get(key)
            if at is None:
                at = len(self.rows) + len(fresh)
                self._index[key] = at
                fresh.append(row)
            elif at >= len(self.rows):
                fresh[at - len(self.rows)] = row
            else:
                self.rows[at] = row
                self._pixmaps.pop(at, None)
                self.dataChanged.emit(self.index(at, 0), self.index(at, len(COLUMNS) - 1))
        if fresh:
            start = len(self.rows)
            self.beginInsertRows(QModelIndex(), start, start + len(fresh) - 1)
            self.rows.extend(fresh)
            self.endInsertRows()

    def clear(self) -> None:
        """Remove every row."""
        self.beginResetModel()
        self.rows = []
        self._index.clear()
        self._pixmaps.clear()
        self.endResetModel()

    def set_threshold(self, threshold: Threshold | float) -> None:
        """Re-decide every row at ``threshold`` (no rescoring)."""
        self.threshold = Threshold.of(threshold)
        if self.rows:
            self.dataChanged.emit(self.index(0, SCORE), self.index(len(self.rows) - 1, VERDICT))

    def set_model_hash(self, model_hash: str | None) -> None:
        """The model in use: rows another model scored are shown stale (no score, no verdict)."""
        self.model_hash = model_hash or None
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(COLUMNS) - 1))

    def is_stale(self, row: BatchRow) -> bool:
        """Whether ``row`` was scored by another model than the one in use (unreadable files never are)."""
        return (self.model_hash is not None and row.error is None and bool(row.model_hash)
                and row.model_hash != self.model_hash)

    def verdict(self, row: BatchRow) -> str:
        """The verdict shown for ``row``: at the current threshold, or :data:`STALE`."""
        return STALE if self.is_stale(row) else row.verdict(self.threshold)

    def counts(self) -> dict[str, int]:
        """OK / NG / ERROR counts at the current threshold (stale rows are in none of them)."""
        verdicts = [self.verdict(row) for row in self.rows]
        return {v: verdicts.count(v) for v in ("OK", "NG", "ERROR")}

    def summary(self) -> str:
        """The counts in words, with the stale rows when there are any."""
        counts, stale = self.counts(), self.stale_count()
        text = f"OK {counts['OK']}   NG {counts['NG']}   errors {counts['ERROR']}"
        return text + (f"   {stale} scored by another model: Re-score" if stale else "")

    def stale_count(self) -> int:
        """How many rows were scored by another model than the one in use."""
        return sum(self.is_stale(row) for row in self.rows)

    def _pixmap(self, row: int) -> QPixmap | None:
        pixmap = self._pixmaps.get(row)
        if pixmap is None and self.rows[row].thumbnail is not None:
            pixmap = self._pixmaps[row] = to_pixmap(self.rows[row].thumbnail)
        return pixmap


def _key(path: str) -> str:
    return os.path.normcase(os.path.abspath(path)) if path else ""


class BatchFilter(QSortFilterProxyModel):
    """Sorts by the model's ``SORT_ROLE`` and filters by verdict and file-name text."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.verdict = ""
        self.text = ""

    def set_verdict(self, verdict: str) -> None:
        """Only rows with this verdict ("" for all)."""
        self.verdict = verdict
        self.invalidate()

    def set_text(self, text: str) -> None:
        """Only files whose name contains ``text`` (case-insensitive)."""
        self.text = text.strip().lower()
        self.invalidate()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:  # noqa: N802 - Qt's name
        """Verdict and text filters."""
        model: BatchTableModel = self.sourceModel()  # type: ignore[assignment]
        row = model.rows[source_row]
        if self.verdict and model.verdict(row) != self.verdict:
            return False
        return not self.text or self.text in Path(row.path).name.lower()
