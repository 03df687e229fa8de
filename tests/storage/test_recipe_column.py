"""The ``recipe`` column (schema 5): stored with every decision made under a recipe, on SQLite and
PostgreSQL, through the recorder and its journal, upgraded into older files, and filtered by
``inspector results --recipe``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from inspector.core.records import Frame, InspectionResult
from inspector.storage.journal import JOURNAL_FILE, DecisionJournal, JournalEntry, journal_folders
from inspector.storage.results_db import SCHEMA_VERSION, ResultStore
from inspector.storage.stores import open_store
from inspector.workers.decision_recorder import DecisionRecorder

ROOT = Path(__file__).resolve().parents[2]


def result(path: str, score: float = 0.5, frame_id: int = 0) -> InspectionResult:
    """A decision on a tiny frame (NG when ``score`` > 1)."""
    image = np.zeros((6, 8, 3), np.uint8)
    frame = Frame(image=image, source="folder:/lot7", frame_id=frame_id, path=path, timestamp=1_700_000_000.25)
    return InspectionResult(frame=frame, raw_score=score * 4.0, score=score, threshold=4.0, anomalous=score > 1.0,
                            model_hash="abc123", latency_ms=12.5)


class _Holder:
    """A store factory as the station's StoreHolder: returns the store, or raises while ``broken``."""

    def __init__(self, store, path):
        self.store, self.path, self.broken = store, path, False

    def __call__(self):
        if self.broken:
            raise sqlite3.OperationalError("database is locked")
        return self.store


def test_recorder_stores_the_recipe_in_every_row_and_the_journal_keeps_it(tmp_path):
    db = tmp_path / "r.sqlite3"
    store = ResultStore(db, images_dir=tmp_path / "ng")
    holder = _Holder(store, db)
    recorder = DecisionRecorder(holder, db_path=db)
    recorder.record(result("/lot7/0.png"))  # before any recipe
    recorder.recipe = "part-a"
    recorder.record(result("/lot7/1.png", 1.5, 1))  # NG: its image goes with it
    recorder.record_error("folder:/lot7", "truncated PNG", "/lot7/2.png", 2, "abc123")
    holder.broken = True  # the database fails: the next decisions go to the journal
    recorder.recipe = "part-b"
    assert recorder.record(result("/lot7/3.png", 1.7, 3)) == (None, None)
    assert recorder.record_error("folder:/lot7", "unreadable", "/lot7/4.png", 4, "abc123") is None
    lines = [json.loads(line) for folder in journal_folders(db) if (folder / JOURNAL_FILE).is_file()
             for line in (folder / JOURNAL_FILE).read_text().splitlines()]
    assert [line["recipe"] for line in lines] == ["part-b", "part-b"]
    holder.broken = False
    recorder.flush(force=True)
    assert recorder.state.healthy
    rows = store.query()[::-1]
    assert [(r["path"], r["verdict"], r["recipe"]) for r in rows] == [
        ("/lot7/0.png", "OK", None), ("/lot7/1.png", "NG", "part-a"), ("/lot7/2.png", "ERROR", "part-a"),
        ("/lot7/3.png", "NG", "part-b"), ("/lot7/4.png", "ERROR", "part-b")]
    assert [r["path"] for r in store.query(recipe="part-b")] == ["/lot7/4.png", "/lot7/3.png"]
    assert store.query(recipe="nope") == []
    store.close()


def test_a_journal_line_without_a_recipe_replays(tmp_path):
    """Lines written before the field existed have no ``recipe``: they replay with NULL."""
    journal = DecisionJournal(tmp_path / "j")
    old = json.loads(JournalEntry("error", "old-uid", "2026-01-01T00:00:00.000+00:00", "cam", 1, "/x.png",
                                  "abc", None, error="bad").to_line())
    del old["recipe"]
    new = JournalEntry("error", "new-uid", "2026-01-01T00:00:01.000+00:00", "cam", 2, "/y.png", "abc", None,
                       error="bad", recipe="part-a")
    journal.append(JournalEntry.from_line(json.dumps(old)))
    journal.append(new)
    with ResultStore(tmp_path / "r.sqlite3") as store:
        assert journal.replay(store) == 2
        assert [(r["uid"], r["recipe"]) for r in store.query()[::-1]] == [("old-uid", None), ("new-uid", "part-a")]


def test_a_schema_4_file_is_upgraded_and_keeps_its_rows(tmp_path):
    db = tmp_path / "v4.db"
    conn = sqlite3.connect(db)  # the schema-4 layout: no recipe column
    conn.executescript(
        "CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, frame_time TEXT, "
        "source TEXT NOT NULL, frame_id INTEGER, path TEXT, raw_score REAL, score REAL, threshold REAL, "
        "verdict TEXT NOT NULL, model_hash TEXT, latency_ms REAL, image_path TEXT, overlay_path TEXT, error TEXT, "
        "uid TEXT, content_hash TEXT, station TEXT);"
        "INSERT INTO decisions (time, source, verdict, model_hash, station) VALUES ('2025-01-01', 'cam', 'OK', "
        "'abc999', 'line-1');"
        "PRAGMA user_version=4;")
    conn.close()
    with ResultStore.open_read_only(db) as reader:  # read-only: not upgraded, and --recipe finds nothing
        assert reader.query(recipe="part-a") == [] and len(reader.query()) == 1
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == 4
    with ResultStore(db, station="line-2") as store:
        store.record(result("/lot7/a.png"), recipe="part-a")
        assert [(r["station"], r["recipe"]) for r in store.query()] == [("line-2", "part-a"), ("line-1", None)]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    conn.close()


def _results(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "inspector", "results", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def test_results_recipe_filters(tmp_path):
    db = tmp_path / "r.sqlite3"
    with ResultStore(db) as store:
        store.record(result("/a.png"), recipe="part-a")
        store.record(result("/b.png"), recipe="part-b")
        store.record(result("/c.png"))
        store.record_error("folder:/lot7", "bad", "/d.png", recipe="part-a")
    done = _results("--db", str(db), "--recipe", "part-a")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["path"], r["recipe"]) for r in rows] == [("/a.png", "part-a"), ("/d.png", "part-a")]
    done = _results("--db", str(db), "--recipe", "part-b", "--format", "csv")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and ",/b.png," in lines[1]  # CSV keeps its columns; the filter applies


# -- PostgreSQL ---------------------------------------------------------------------------------

def _pg_url():
    pytest.importorskip("psycopg", reason="psycopg not installed (pip install 'inspector[scale]')")
    from inspector.scale.pg_server import find_bin_dir, shared_server

    if find_bin_dir() is None:
        pytest.skip("PostgreSQL server binaries missing (apt-get install postgresql)")
    return shared_server().create_database(f"t_{uuid.uuid4().hex[:12]}")


def test_postgres_stores_filters_and_migrates_the_recipe(tmp_path):
    import psycopg

    from inspector.storage.postgres_store import MIGRATIONS

    url = _pg_url()
    with psycopg.connect(url, autocommit=True) as conn:  # a database left at schema 4
        for step in (1, 2, 3, 4):
            for statement in filter(None, (s.strip() for s in MIGRATIONS[step].split(";"))):
                conn.execute(statement)
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (4)")
        conn.execute("INSERT INTO decisions (time, source, verdict, uid) VALUES ('2025-01-01', 'cam', 'OK', 'old')")
    with open_store(url, read_only=True) as reader:  # read as it is: --recipe finds nothing, no error
        assert reader.schema_version == 4 and reader.query(recipe="part-a") == []
    with open_store(url, station="s", images_dir=tmp_path / "ng") as store:
        assert store.schema_version == SCHEMA_VERSION
        holder = _Holder(store, tmp_path / "pg.sqlite3")
        recorder = DecisionRecorder(holder, db_path=tmp_path / "pg.sqlite3")
        recorder.recipe = "part-a"
        recorder.record(result("/a.png", 1.5))
        recorder.record_error("cam", "bad", "/b.png", 1, "abc123")
        holder.broken = True
        recorder.recipe = "part-b"
        recorder.record(result("/c.png", 0.2, 2))  # journalled
        holder.broken = False
        recorder.flush(force=True)
        assert recorder.state.healthy
        rows = store.query()[::-1]
        assert [(r["uid"] == "old", r["recipe"]) for r in rows] == [
            (True, None), (False, "part-a"), (False, "part-a"), (False, "part-b")]
        assert [r["path"] for r in store.query(recipe="part-a")] == ["/b.png", "/a.png"]
    done = _results("--db", url, "--recipe", "part-b")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["path"] for line in done.stdout.splitlines()] == ["/c.png"]
