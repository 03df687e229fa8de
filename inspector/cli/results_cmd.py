"""``inspector results``: list the decisions recorded in the results database.

The database is opened read-only (:meth:`ResultStore.open_read_only`): listing never
changes it, even a 0-byte or schema-1 file. A missing, empty, corrupt, locked,
unreadable or newer-version database gives one line on stderr and exit code 2.
``--db postgresql://user@host/dbname`` queries a fleet's shared store (read-only session);
``--station``, ``--model-hash`` and ``--recipe`` narrow it down.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys

HELP = "list recorded decisions (time, source, frame, score, threshold, verdict, model), or the audit trail"

FIELDS = ["id", "time", "source", "frame_id", "path", "raw_score", "score", "threshold", "verdict",
          "model_hash", "latency_ms", "image_path", "overlay_path", "error", "station", "recipe"]


def add_arguments(parser) -> None:
    """Arguments of ``inspector results``."""
    parser.add_argument("--db", metavar="PATH|URL",
                        help="results database: an SQLite file (default: the station's) or "
                             "postgresql://user@host:port/dbname (a fleet's shared store)")
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--since", metavar="TIME",
                        help="ISO date/time (e.g. 2026-11-22 or 2026-11-22T08:00; local time unless it has a zone)")
    parser.add_argument("--source", help="only this source, e.g. folder:/data/lot7")
    parser.add_argument("--verdict", choices=("OK", "NG", "ERROR"))
    parser.add_argument("--station", metavar="NAME", help="only decisions of this station (host name or --station)")
    parser.add_argument("--recipe", metavar="NAME",
                        help="only decisions made under this recipe (none in a database older than schema 5)")
    parser.add_argument("--model-hash", metavar="HASH", help="only decisions by this model (the hash or its start)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="at most this many rows (newest first)")
    parser.add_argument("--audit", action="store_true",
                        help="list the audit trail instead (model swaps, calibrations, threshold changes, "
                             "feedback, refits: time, user, old and new value, model hashes); --since and "
                             "--limit apply, --action filters")
    parser.add_argument("--action", help="with --audit: only this action, e.g. threshold or model_swap")
    parser.add_argument("--wait", type=float, default=5.0, metavar="SECONDS",
                        help="how long to wait for a database locked by another process, or for a "
                             "PostgreSQL server to answer (default 5)")


def parse_time(text: str) -> dt.datetime:
    """Parse ``--since``; a value without a zone is local time.

    Raises:
        ValueError: for text that is not an ISO date or date-time.
    """
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"--since {text!r} is not an ISO date or date-time (e.g. 2026-11-22T08:00)") from exc


def run(args) -> int:
    """Print the matching rows, oldest first."""
    from inspector.storage.stores import open_store

    since = parse_time(args.since) if args.since else None
    if args.action and not args.audit:
        raise ValueError("--action filters the audit trail: use it with --audit")
    with open_store(args.db, read_only=True, timeout=args.wait) as store:
        if args.audit:
            rows = store.query_audit(since=since, action=args.action, limit=args.limit)
        else:
            rows = store.query(since=since, source=args.source, limit=args.limit, verdict=args.verdict,
                               station=args.station, model_hash=args.model_hash, recipe=args.recipe)
    rows.reverse()
    if args.format == "csv":
        from inspector.storage.audit import AUDIT_COLUMNS

        writer = csv.DictWriter(sys.stdout, fieldnames=list(AUDIT_COLUMNS) if args.audit else FIELDS,
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    else:
        from inspector.storage.audit import decoded

        for row in rows:
            sys.stdout.write(json.dumps(decoded(row) if args.audit else row) + "\n")
    return 0
