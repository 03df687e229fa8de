"""Writing score records as a table, JSON lines or CSV, one record at a time."""

from __future__ import annotations

import csv
import json
import sys
from typing import TextIO

CSV_FIELDS = ["path", "score", "raw_score", "anomalous", "threshold", "heatmap", "regions", "error"]


class RecordWriter:
    """Streams records to ``stream`` in the chosen format."""

    def __init__(self, fmt: str, stream: TextIO | None = None) -> None:
        self.format = fmt
        self.stream = stream or sys.stdout
        self._csv = None
        self._header_done = False

    def write(self, record: dict) -> None:
        """Write one record (``path`` plus either scores or ``error``)."""
        if self.format == "jsonl":
            self.stream.write(json.dumps(record) + "\n")
        elif self.format == "csv":
            if self._csv is None:
                self._csv = csv.DictWriter(self.stream, fieldnames=CSV_FIELDS, extrasaction="ignore")
                self._csv.writeheader()
            row = dict(record)
            if "regions" in row:
                row["regions"] = len(row["regions"])
            self._csv.writerow(row)
        else:
            self._write_table_row(record)
        self.stream.flush()

    def _write_table_row(self, record: dict) -> None:
        if not self._header_done:
            self.stream.write(f"{'verdict':<8}{'score':>9}{'raw':>12}  path\n")
            self._header_done = True
        if "error" in record:
            self.stream.write(f"{'ERROR':<8}{'':>9}{'':>12}  {record['path']}  ({record['error']})\n")
            return
        verdict = "NG" if record["anomalous"] else "OK"
        extra = f"  -> {record['heatmap']}" if record.get("heatmap") else ""
        self.stream.write(f"{verdict:<8}{record['score']:>9.3f}{record['raw_score']:>12.4f}  {record['path']}{extra}\n")
