"""Batch review rows and their exports: CSV and a self-contained HTML report (no Qt).

The HTML report embeds the NG images and their overlays as base64 PNG, so the
one file can be mailed or archived without the images folder.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from inspector.core.policy import Threshold

THUMBNAIL_SIZE = 72
REPORT_IMAGE_SIZE = 360


@dataclass(frozen=True)
class BatchRow:
    """One file of a batch, as the review table shows it.

    Attributes:
        path: The image file.
        raw_score: The detector's score (``nan`` for files that could not be read).
        time: When it was decided (ISO 8601, UTC).
        latency_ms: Detection time.
        model_hash: The model that scored it.
        thumbnail: A small RGB preview, or ``None``.
        error: Why the file could not be inspected, if it could not.
        resumed: Scored by an earlier, interrupted run (read back from the database).
    """

    path: str
    raw_score: float
    time: str
    latency_ms: float = 0.0
    model_hash: str = ""
    thumbnail: np.ndarray | None = None
    error: str | None = None
    resumed: bool = False

    def verdict(self, threshold: Threshold | float) -> str:
        """``OK``/``NG`` at ``threshold`` (re-decided, never rescored), or ``ERROR``."""
        if self.error is not None or not np.isfinite(self.raw_score):
            return "ERROR"
        return Threshold.of(threshold).verdict(self.raw_score)

    def normalized(self, threshold: Threshold | float) -> float:
        """The normalized score at ``threshold`` (``nan`` for unreadable files)."""
        return Threshold.of(threshold).normalize(self.raw_score)


def thumbnail(image: np.ndarray, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """A copy of ``image`` whose longer side is ``size`` pixels."""
    return fit_within(image, size)


def fit_within(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` scaled so that its longer side is at most ``size`` (a copy, C-contiguous)."""
    height, width = image.shape[:2]
    scale = min(1.0, size / max(height, width))
    if scale >= 1.0:
        return np.ascontiguousarray(image).copy()
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, new, interpolation=cv2.INTER_AREA)


def utc_now() -> str:
    """The current time as ISO 8601 UTC with seconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_csv(path: str | os.PathLike, rows: Sequence[BatchRow], threshold: Threshold | float) -> Path:
    """Write one line per file: file, score, raw score, threshold, verdict, time, latency, model, error."""
    path = Path(path)
    rule = Threshold.of(threshold)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "score", "raw_score", "threshold", "verdict", "time", "latency_ms",
                         "model_hash", "error"])
        for row in rows:
            finite = np.isfinite(row.raw_score)
            writer.writerow([
                row.path,
                f"{row.normalized(rule):.4f}" if finite else "",
                f"{row.raw_score:.6g}" if finite else "",
                f"{rule.raw:.6g}",
                row.verdict(rule),
                row.time,
                f"{row.latency_ms:.1f}",
                row.model_hash,
                row.error or "",
            ])
    return path


def png_data_uri(image: np.ndarray, size: int = REPORT_IMAGE_SIZE) -> str:
    """``data:image/png;base64,...`` of an RGB image scaled to fit ``size``."""
    small = fit_within(image, size)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError("could not encode PNG")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


_STYLE = """
body{font-family:Segoe UI,Helvetica,Arial,sans-serif;background:#f4f5f7;color:#1d232a;margin:24px}
h1{margin:0 0 4px} .meta{color:#5a6470;margin-bottom:16px}
.summary span{display:inline-block;padding:6px 14px;margin-right:8px;border-radius:4px;font-weight:600}
.ok{background:#1f9d55;color:#fff} .ng{background:#d32f2f;color:#fff} .err{background:#8a8f98;color:#fff}
table{border-collapse:collapse;background:#fff;margin:12px 0;font-size:13px}
td,th{border:1px solid #d5d9de;padding:4px 8px;text-align:left} th{background:#e8ebef}
.card{background:#fff;border:1px solid #d5d9de;border-radius:6px;padding:12px;margin:12px 0}
.card img{margin-right:12px;border:1px solid #ccc;image-rendering:auto}
"""


def _rates_section(calibration, rows: Sequence[BatchRow], rule: Threshold) -> list[str]:
    """What the threshold promises (with intervals) and whether this batch looks like the references."""
    if calibration is None or not calibration.good_scores:
        return []
    from inspector.calibration.drift import drift_test
    from inspector.calibration.intervals import frr_estimate

    good = np.asarray(calibration.good_scores, dtype=np.float64)
    frr = frr_estimate(int(np.sum(rule.decide_many(good))), good.size)
    lines = [f"Expected false rejects at this threshold: {frr.describe()} held-out good images"]
    if calibration.bad_scores:
        from inspector.calibration.intervals import escape_estimate

        bad = np.asarray(calibration.bad_scores, dtype=np.float64)
        lines.append(f"Expected escapes: {escape_estimate(int(np.sum(~rule.decide_many(bad))), bad.size).describe()} "
                     "known-bad images")
    scores = [row.raw_score for row in rows if np.isfinite(row.raw_score)]
    if scores:
        report = drift_test(good, rule.raw, scores)
        lines.append(f"Drift test on this batch: {report.message}")
    return ["<div class='meta'>" + "<br>".join(html.escape(line) for line in lines) + "</div>"]


def write_html(
    path: str | os.PathLike,
    rows: Sequence[BatchRow],
    threshold: Threshold | float,
    ng_images: Iterable[tuple[BatchRow, np.ndarray, np.ndarray | None]],
    title: str = "Inspection batch report",
    source: str = "",
    calibration=None,
) -> Path:
    """Write a single-file HTML report.

    Args:
        path: The ``.html`` file to write.
        rows: All files of the batch.
        threshold: Raw threshold the verdicts are decided at.
        ng_images: For each NG file: its row, the image, and its overlay (or ``None``).
        title: The report's heading.
        source: What was inspected (shown under the heading).
        calibration: The model's calibration: its expected rates (with their 95 % intervals)
            and a drift test of this batch's scores against its held-out scores are shown.
    """
    path = Path(path)
    rule = Threshold.of(threshold)
    verdicts = [row.verdict(rule) for row in rows]
    counts = {v: verdicts.count(v) for v in ("OK", "NG", "ERROR")}
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<div class='meta'>{esc(source)} &middot; generated {esc(utc_now())} &middot; threshold {rule.raw:.6g}</div>",
        "<div class='summary'>",
        f"<span class='ok'>OK {counts['OK']}</span><span class='ng'>NG {counts['NG']}</span>",
        f"<span class='err'>ERROR {counts['ERROR']}</span></div>",
    ]
    parts += _rates_section(calibration, rows, rule)
    parts.append("<h2>Rejected parts</h2>")
    any_ng = False
    for row, image, overlay in ng_images:
        any_ng = True
        parts.append("<div class='card'>")
        parts.append(f"<div><b>{esc(Path(row.path).name)}</b> &middot; score {row.normalized(rule):.3f}"
                     f" &middot; {esc(row.path)}</div>")
        parts.append(f"<img alt='image' src='{png_data_uri(image)}'>")
        if overlay is not None:
            parts.append(f"<img alt='overlay' src='{png_data_uri(overlay)}'>")
        parts.append("</div>")
    if not any_ng:
        parts.append("<p>No rejected parts.</p>")
    parts.append("<h2>All files</h2><table><tr><th>File</th><th>Score</th><th>Verdict</th><th>Time</th></tr>")
    for row, verdict in zip(rows, verdicts):
        score = f"{row.normalized(rule):.3f}" if np.isfinite(row.raw_score) else esc(row.error or "")
        css = {"OK": "", "NG": " class='ng'", "ERROR": " class='err'"}[verdict]
        parts.append(f"<tr><td>{esc(row.path)}</td><td>{score}</td><td{css}>{verdict}</td><td>{esc(row.time)}</td></tr>")
    parts.append("</table></body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
