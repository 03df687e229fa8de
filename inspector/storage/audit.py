"""The audit trail: who changed what on the station, kept in the results database beside the decisions.

Every model swap, calibration, threshold change, operator feedback and refit is
one row: the time (UTC), the operating-system user and host, the action, the
old and new value (text; JSON for structured values) and the model hashes
before and after. ``inspector results --audit`` lists them.
"""

from __future__ import annotations

import getpass
import json
import socket
from typing import Any

AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    time            TEXT NOT NULL,
    user            TEXT,
    host            TEXT,
    action          TEXT NOT NULL,
    old_value       TEXT,
    new_value       TEXT,
    old_model_hash  TEXT,
    new_model_hash  TEXT,
    detail          TEXT
);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time);
"""

AUDIT_ACTIONS = ("model_swap", "calibration", "threshold", "feedback", "refit", "recipe", "settings")
"""The actions the station records (others are accepted: the list documents, it does not restrict)."""

AUDIT_COLUMNS = ("id", "time", "user", "host", "action", "old_value", "new_value",
                 "old_model_hash", "new_model_hash", "detail")


def current_user() -> str:
    """The operating-system user running Inspector (``"unknown"`` if it cannot be told)."""
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers, services)
        return "unknown"


def audit_values(action: str, old: Any = None, new: Any = None, old_model_hash: str | None = None,
                 new_model_hash: str | None = None, detail: Any = None, user: str | None = None,
                 time: str = "") -> dict[str, Any]:
    """The column values of one audit row (values that are not text are stored as JSON)."""
    if not action:
        raise ValueError("an audit entry needs an action")
    return {
        "time": time, "user": user or current_user(), "host": socket.gethostname(), "action": str(action),
        "old_value": _text(old), "new_value": _text(new), "old_model_hash": old_model_hash,
        "new_model_hash": new_model_hash, "detail": _text(detail),
    }


def audit_query(since_iso: str | None, action: str | None, limit: int | None,
                mark: str = "?") -> tuple[str, list[Any]]:
    """The SELECT of audit entries, newest first, and its parameters (``mark``: the driver's placeholder)."""
    clauses, params = [], []
    if since_iso is not None:
        clauses.append(f"time >= {mark}")
        params.append(since_iso)
    if action is not None:
        clauses.append(f"action = {mark}")
        params.append(action)
    sql = "SELECT * FROM audit" + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY id DESC"
    if limit is not None:
        sql += f" LIMIT {mark}"
        params.append(int(limit))
    return sql, params


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def decoded(row: dict[str, Any]) -> dict[str, Any]:
    """An audit row with its JSON-held values (a detail with a path and counts, say) as JSON again.

    What :func:`audit_values` stored as JSON text comes back as the object it was, for
    JSON-lines output; plain text stays text.
    """
    out = dict(row)
    for column in ("old_value", "new_value", "detail"):
        value = out.get(column)
        if isinstance(value, str) and value[:1] in "{[":
            try:
                out[column] = json.loads(value)
            except ValueError:
                pass
    return out

