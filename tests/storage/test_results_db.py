"""ResultStore: WAL, immediate commits, queries, resume, NG images."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from inspector.core.imageio import read_image
from inspector.core.records import Frame, InspectionResult
from inspector.storage.results_db import SCHEMA_VERSION, ResultStore, ResultStoreError, default_db_path


def result(path: str | None, score: float = 0.5, source: str = "folder:/lot7", frame_id: int = 0):
    image = np.zeros((6, 8, 3), np.uint8)
    image[..., 0] = 200
    frame = Frame(image=image, source=source, frame_id=frame_id, path=path, timestamp=1_700_000_000.25)
    return InspectionResult(
        frame=frame,
        raw_score=score * 4.0,
        score=score,
        threshold=4.0,
        anomalous=score > 1.0,
        model_hash="abc123",
        latency_ms=12.5,
    )


def test_records_survive_reopen_and_wal_is_on(tmp_path):
    db = tmp_path / "sub" / "results.sqlite3"
    store = ResultStore(db)
    first = store.record(result("/lot7/a.png", 0.4))
    second = store.record(result("/lot7/b.png", 1.7, frame_id=1), image_path="/x/b_ng.png")
    assert second > first
    # A second connection sees the rows without the store being closed: they are committed.
    other = sqlite3.connect(db)
    assert other.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 2
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()
    store.close()
    store.close()

    with ResultStore(db) as reopened:
        rows = reopened.query()
    assert [r["path"] for r in rows] == ["/lot7/b.png", "/lot7/a.png"]  # newest first
    ng = rows[0]
    assert ng["verdict"] == "NG" and ng["score"] == pytest.approx(1.7)
    assert ng["raw_score"] == pytest.approx(6.8) and ng["threshold"] == 4.0
    assert ng["model_hash"] == "abc123" and ng["latency_ms"] == 12.5
    assert ng["image_path"] == "/x/b_ng.png" and ng["overlay_path"] is None and ng["error"] is None
    assert ng["frame_time"] == "2023-11-14T22:13:20.250+00:00"
    moment = datetime.fromisoformat(ng["time"])
    assert moment.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - moment) < timedelta(minutes=1)


def test_query_filters(tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        for i in range(5):
            store.record(result(f"/lot7/{i}.png", 0.2 * i + 0.5, frame_id=i))
        store.record(result(None, 0.1, source="camera:0"))
        assert len(store.query()) == 6
        assert len(store.query(limit=2)) == 2
        assert len(store.query(limit=None)) == 6
        assert [r["source"] for r in store.query(source="camera:0")] == ["camera:0"]
        assert len(store.query(verdict="NG")) == 2
        assert store.query(since=datetime.now(timezone.utc) + timedelta(hours=1)) == []
        assert len(store.query(since=datetime.now() - timedelta(hours=1))) == 6  # naive = local
        assert store.count() == 6 and store.count("camera:0") == 1


def test_done_paths_and_errors(tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        store.record(result("/lot7/a.png"))
        store.record(result("/lot7/a.png"))
        store.record(result("/lot8/c.png", source="folder:/lot8"))
        store.record(result(None, source="folder:/lot7"))
        store.record_error("folder:/lot7", "not a readable image", path="/lot7/bad.png", frame_id=3)
        assert store.done_paths("folder:/lot7") == {"/lot7/a.png", "/lot7/bad.png"}
        assert store.done_paths("folder:/lot7", include_errors=False) == {"/lot7/a.png"}
        assert store.done_paths("folder:/nothing") == set()
        (error,) = store.query(verdict="ERROR")
        assert error["error"] == "not a readable image" and error["score"] is None


def test_save_ng_image_writes_pngs_beside_the_db(tmp_path):
    store = ResultStore(tmp_path / "r.db")
    ng = result("/lot7/part 12.png", 2.0)
    overlay = np.zeros((6, 8, 3), np.uint8)
    overlay[..., 1] = 99
    image_path, overlay_path = store.save_ng_image(ng, overlay)
    again, no_overlay = store.save_ng_image(ng)
    assert no_overlay is None and again != image_path
    assert Path(image_path).parent == tmp_path / "ng_images" / "2023-11-14"
    assert Path(image_path).name.endswith("_ng.png") and "part-12" in image_path
    assert read_image(image_path)[0, 0].tolist() == [200, 0, 0]
    assert read_image(overlay_path)[0, 0].tolist() == [0, 99, 0]
    store.record(ng, image_path, overlay_path)
    assert store.query()[0]["overlay_path"] == overlay_path
    store.close()


def test_attach_overlay_later(tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        ng = result("/lot7/a.png", 2.0)
        image_path, _ = store.save_ng_image(ng)
        row = store.record(ng, image_path)
        bare = store.record(result("/lot7/b.png", 3.0))
        overlay = np.full((6, 8, 3), 7, np.uint8)
        path = store.attach_overlay(row, overlay)
        assert path == image_path[: -len("_ng.png")] + "_overlay.png"
        assert read_image(path)[0, 0].tolist() == [7, 7, 7]
        assert store.attach_overlay(bare, overlay) == str(tmp_path / "ng_images" / f"row{bare}_overlay.png")
        by_id = {r["id"]: r for r in store.query()}
        assert by_id[row]["overlay_path"] == path and by_id[bare]["overlay_path"].endswith("_overlay.png")
        with pytest.raises(KeyError):
            store.attach_overlay(999, overlay)


def test_usable_from_a_worker_thread(tmp_path):
    store = ResultStore(tmp_path / "r.db")
    errors = []

    def work():
        try:
            for i in range(20):
                store.record(result(f"/lot7/{i}.png", frame_id=i))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    while worker.is_alive():
        store.query(limit=5)
    worker.join()
    assert errors == [] and store.count() == 20
    store.close()


def test_not_a_database(tmp_path):
    bogus = tmp_path / "r.db"
    bogus.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ResultStoreError, match="not a usable results database"):
        ResultStore(bogus)


def test_default_db_path(monkeypatch, tmp_path):
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path))
    assert default_db_path() == tmp_path / "results.sqlite3"
    monkeypatch.delenv("INSPECTOR_DATA_DIR")
    assert default_db_path().name == "results.sqlite3"
    assert "inspector" in str(default_db_path().parent)


def test_same_uid_is_stored_once_and_keeps_its_time(tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        first = store.record(result("/lot7/a.png"), uid="u-1", content_hash="h1",
                             recorded_at="2026-01-02T03:04:05.000+00:00")
        again = store.record(result("/lot7/a.png"), uid="u-1", content_hash="h1")
        other = store.record_error("folder:/lot7", "bad", "/lot7/b.png", uid="u-2")
        assert again == first and other != first
        assert store.has_uid("u-1") and not store.has_uid("u-3")
        rows = store.query()
    assert len(rows) == 2
    kept = [r for r in rows if r["uid"] == "u-1"][0]
    assert kept["time"] == "2026-01-02T03:04:05.000+00:00" and kept["content_hash"] == "h1"


def test_a_schema_1_database_is_upgraded_in_place(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(
        "CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, frame_time TEXT,"
        " source TEXT NOT NULL, frame_id INTEGER, path TEXT, raw_score REAL, score REAL, threshold REAL,"
        " verdict TEXT NOT NULL, model_hash TEXT, latency_ms REAL, image_path TEXT, overlay_path TEXT,"
        " error TEXT);"
        "INSERT INTO decisions (time, source, path, verdict) VALUES ('t', 'folder:/lot7', '/lot7/a.png', 'OK');"
        "PRAGMA user_version=1;"
    )
    conn.close()
    with ResultStore(db) as store:
        store.record(result("/lot7/b.png"), uid="u-9")
        rows = store.query()
    assert [r["path"] for r in rows] == ["/lot7/b.png", "/lot7/a.png"]
    assert rows[0]["uid"] == "u-9" and rows[1]["uid"] is None
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_latest_rows_is_the_newest_row_per_file_of_one_model(tmp_path):
    from dataclasses import replace

    with ResultStore(tmp_path / "r.sqlite3") as store:
        store.record(result("/lot7/a.png", 0.4), content_hash="old")
        store.record(result("/lot7/a.png", 1.6), content_hash="new")
        store.record(result("/lot7/b.png", 0.3), content_hash="b")
        store.record_error("folder:/lot7", "cannot decode", "/lot7/c.png", model_hash="abc123", content_hash="c")
        other_model = result("/lot7/b.png", 2.0)
        store.record(replace(other_model, model_hash="zzz"), content_hash="b2")
        store.record(result("/lot8/a.png", 0.1, source="folder:/lot8"), content_hash="x")
        latest = store.latest_rows("folder:/lot7", "abc123")
    assert sorted(latest) == ["/lot7/a.png", "/lot7/b.png", "/lot7/c.png"]
    assert latest["/lot7/a.png"]["content_hash"] == "new" and latest["/lot7/a.png"]["score"] == 1.6
    assert latest["/lot7/b.png"]["content_hash"] == "b"
    assert latest["/lot7/c.png"]["verdict"] == "ERROR"


def test_file_digest_is_the_sha256_of_the_bytes(tmp_path):
    import hashlib

    from inspector.storage.results_db import file_digest

    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG" + bytes(range(256)) * 5000)
    assert file_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_digest(tmp_path / "missing.png") is None


def test_read_only_store_reads_and_refuses_to_write(tmp_path):
    db = tmp_path / "r.sqlite3"
    with ResultStore(db) as store:
        store.record(result("/lot7/a.png", 0.4), content_hash="h")
    before = db.read_bytes()
    with ResultStore.open_read_only(db) as store:
        assert store.read_only
        assert [row["path"] for row in store.query()] == ["/lot7/a.png"]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.record(result("/lot7/b.png", 0.4))
    assert db.read_bytes() == before


def test_read_only_open_of_an_empty_file_writes_nothing(tmp_path):
    db = tmp_path / "empty.sqlite3"
    db.touch()
    with pytest.raises(ResultStoreError, match="empty file"):
        ResultStore.open_read_only(db)
    assert db.stat().st_size == 0
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:  # an SQLite database without our table
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(ResultStoreError, match="without a decisions table"):
        ResultStore.open_read_only(other)


def test_audit_trail_records_who_changed_what(tmp_path):
    db = tmp_path / "r.db"
    with ResultStore(db) as store:
        store.record_audit("threshold", old=1.5, new=1.8, old_model_hash="m1", new_model_hash="m1")
        store.record_audit("model_swap", old="a.safetensors", new="b.safetensors", old_model_hash="m1",
                           new_model_hash="m2", detail={"reason": "refit"}, user="quality")
        rows = store.query_audit()
    assert [r["action"] for r in rows] == ["model_swap", "threshold"]
    assert rows[0]["user"] == "quality" and rows[0]["detail"] == '{"reason": "refit"}'
    assert rows[1]["old_value"] == "1.5" and rows[1]["new_value"] == "1.8" and rows[1]["user"]
    with ResultStore.open_read_only(db) as reader:
        assert [r["action"] for r in reader.query_audit(action="threshold")] == ["threshold"]


def test_a_schema_2_database_gets_the_audit_table_and_reads_without_it(tmp_path):
    db = tmp_path / "old.db"
    with ResultStore(db) as store:
        store.record(result("/lot7/a.png"))
    conn = sqlite3.connect(db)
    conn.executescript("DROP TABLE audit; PRAGMA user_version=2;")
    conn.close()
    with ResultStore.open_read_only(db) as reader:
        assert reader.query_audit() == []  # an older database has no trail: nothing, not an error
    with ResultStore(db) as store:
        store.record_audit("threshold", old=1, new=2)
        assert len(store.query_audit()) == 1 and store.count() == 1


def test_a_schema_3_database_gets_the_station_column_and_filters(tmp_path):
    db = tmp_path / "v3.db"
    conn = sqlite3.connect(db)  # the schema-3 layout: no station column
    conn.executescript(
        "CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, frame_time TEXT, "
        "source TEXT NOT NULL, frame_id INTEGER, path TEXT, raw_score REAL, score REAL, threshold REAL, "
        "verdict TEXT NOT NULL, model_hash TEXT, latency_ms REAL, image_path TEXT, overlay_path TEXT, error TEXT, "
        "uid TEXT, content_hash TEXT);"
        "INSERT INTO decisions (time, source, verdict, model_hash) VALUES ('2025-01-01', 'cam', 'OK', 'abc999');"
        "PRAGMA user_version=3;")
    conn.close()
    with ResultStore(db, station="line-2") as store:
        store.record(result("/lot7/a.png"))
        assert [r["station"] for r in store.query()] == ["line-2", None]
        assert [r["path"] for r in store.query(station="line-2")] == ["/lot7/a.png"]
        assert len(store.query(model_hash="abc")) == 2 and store.query(model_hash="abd") == []
        assert store.recorded_contents("abc123", ["/lot7/a.png"]) == set()  # no content hash recorded
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
