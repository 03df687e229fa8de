"""The station's log view: the audit trail, newest first, read on the model worker."""

from __future__ import annotations

import json

from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from inspector.gui.theme import MUTED

COLUMNS = (("time", "Time (UTC)"), ("user", "User"), ("action", "Action"), ("old_value", "Old"),
           ("new_value", "New"), ("old_model_hash", "Old model"), ("new_model_hash", "New model"),
           ("detail", "Detail"))
HASH_CHARS = 12


class AuditView(QWidget):
    """A table of audit rows; :meth:`set_rows` fills it, the Refresh button asks for new ones.

    Args:
        refresh: Called to ask for rows (the station's audit trail answers with :meth:`set_rows`).
    """

    def __init__(self, refresh, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._refresh = refresh
        self.rows: list[dict] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([title for _, title in COLUMNS])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.summary = QLabel("no changes recorded yet")
        self.summary.setStyleSheet(f"color: {MUTED};")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        top = QHBoxLayout()
        intro = QLabel("Every model swap, calibration, threshold change, feedback and refit, newest first.")
        intro.setWordWrap(True)  # never widens the window
        top.addWidget(intro, 1)
        top.addWidget(self.summary)
        top.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)

    def refresh(self) -> None:
        """Ask for the newest rows (answered on the model worker)."""
        self._refresh()

    def refresh_if_shown(self, *_args) -> None:
        """Refresh when the view is on screen (a new row was recorded); else at the next showing."""
        if self.isVisible():
            self.refresh()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Refresh when the tab is opened."""
        super().showEvent(event)
        self.refresh()

    def set_rows(self, rows: list[dict]) -> None:
        """Show ``rows`` (dicts as ``ResultStore.query_audit`` returns them, newest first)."""
        self.rows = list(rows)
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            for c, (key, _) in enumerate(COLUMNS):
                value = row.get(key)
                text = "" if value is None else str(value)
                if key.endswith("model_hash"):
                    text = text[:HASH_CHARS]
                item = QTableWidgetItem(_short(text) if key == "detail" else text)
                item.setToolTip(_pretty(str(value)) if key == "detail" and value else text)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.summary.setText(f"{len(self.rows)} entries" if self.rows else "no changes recorded yet")

    def shown_actions(self) -> list[str]:
        """The actions shown, newest first."""
        return [str(row.get("action")) for row in self.rows]


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=1, sort_keys=True)
    except (ValueError, TypeError):
        return text
