"""``inspector results --audit`` lists the audit trail, read-only, as JSON lines or CSV."""

from __future__ import annotations

import csv
import io
import json

from inspector.cli.main import main
from inspector.storage.results_db import ResultStore


def test_results_audit_lists_changes_oldest_first(tmp_path, capsys):
    db = tmp_path / "r.sqlite3"
    with ResultStore(db) as store:
        store.record_audit("threshold", old=1.5, new=1.8, old_model_hash="m1", new_model_hash="m1")
        store.record_audit("model_swap", old="a", new="b", old_model_hash="m1", new_model_hash="m2")
    before = db.read_bytes()
    assert main(["results", "--db", str(db), "--audit"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["action"] for r in rows] == ["threshold", "model_swap"]
    assert rows[1]["new_model_hash"] == "m2" and rows[0]["user"]
    assert main(["results", "--db", str(db), "--audit", "--action", "model_swap", "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["action"] for r in table] == ["model_swap"] and table[0]["old_value"] == "a"
    assert main(["results", "--db", str(db), "--action", "threshold"]) == 2  # --action needs --audit
    assert db.read_bytes() == before
