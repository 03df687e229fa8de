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


def test_results_audit_jsonl_gives_a_detail_as_the_object_it_was(tmp_path, capsys):
    db = tmp_path / "r.sqlite3"
    with ResultStore(db) as store:
        store.record_audit("feedback", new="good", detail={"path": "/parts/a.png", "source": "command line"})
        store.record_audit("threshold", old=1.5, new=1.8, detail="operator")
    assert main(["results", "--db", str(db), "--audit"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["detail"] == {"path": "/parts/a.png", "source": "command line"}
    assert rows[1]["detail"] == "operator" and rows[1]["new_value"] == "1.8"
    assert main(["results", "--db", str(db), "--audit", "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert json.loads(table[0]["detail"])["path"] == "/parts/a.png"  # CSV keeps the JSON text
