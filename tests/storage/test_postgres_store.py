"""PostgresStore against a real PostgreSQL server: same interface and rows as SQLite, migrations,
uid idempotency, read-only sessions, two writers and a reader at once, and ``inspector results``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pytest

from inspector.core.records import Frame, InspectionResult
from inspector.scale.pg_server import find_bin_dir
from inspector.storage.results_db import SCHEMA_VERSION, ResultStore, ResultStoreError
from inspector.storage.stores import STORE_METHODS, open_store

psycopg = pytest.importorskip("psycopg", reason="psycopg not installed (pip install 'inspector[scale]')")
pytestmark = pytest.mark.skipif(find_bin_dir() is None,
                                reason="PostgreSQL server binaries missing (apt-get install postgresql)")


@pytest.fixture(scope="session")
def pg_server():
    """One real server for the session (initdb in a temporary folder, loopback port)."""
    from inspector.scale.pg_server import shared_server

    return shared_server()


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty database on the server."""
    return pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


def result(path, score=0.5, source="folder:/lot7", frame_id=0, model_hash="abc123"):
    image = np.zeros((6, 8, 3), np.uint8)
    image[..., 1] = 90
    frame = Frame(image=image, source=source, frame_id=frame_id, path=path, timestamp=1_700_000_000.25)
    return InspectionResult(frame=frame, raw_score=score * 4.0, score=score, threshold=4.0, anomalous=score > 1.0,
                            model_hash=model_hash, latency_ms=12.5)


def test_both_backends_have_the_interface_and_the_same_rows(pg_url, tmp_path):
    pg = open_store(pg_url, station="line-1", images_dir=tmp_path / "ng")
    lite = open_store(tmp_path / "r.sqlite3", station="line-1")
    for store in (pg, lite):
        assert all(callable(getattr(store, name)) for name in STORE_METHODS)
        store.record(result("/lot7/a.png", 0.4), uid="u-a", content_hash="h-a", recorded_at="2026-01-01T00:00:00.000+00:00")
        store.record_error("folder:/lot7", "truncated PNG", "/lot7/b.png", 1, "abc123", content_hash="h-b",
                           recorded_at="2026-01-01T00:00:01.000+00:00")
    rows_pg, rows_lite = pg.query(), lite.query()
    assert [set(r) for r in rows_pg] == [set(r) for r in rows_lite]  # the same columns
    assert rows_pg == rows_lite  # and the same values, ids included (a fresh database each)
    assert rows_pg[0]["verdict"] == "ERROR" and rows_pg[1]["station"] == "line-1"
    assert pg.latest_rows("folder:/lot7", "abc123").keys() == lite.latest_rows("folder:/lot7", "abc123").keys()
    assert pg.done_files("folder:/lot7", "abc123") == lite.done_files("folder:/lot7", "abc123")
    assert pg.done_paths("folder:/lot7", include_errors=False) == {"/lot7/a.png"}
    assert pg.recorded_contents("abc123", ["/lot7/a.png", "/lot7/b.png", "/x"]) == {
        ("/lot7/a.png", "h-a"), ("/lot7/b.png", "h-b")} == lite.recorded_contents("abc123", ["/lot7/a.png",
                                                                                            "/lot7/b.png"])
    assert pg.count() == lite.count() == 2 and pg.count("elsewhere") == 0
    pg.close(), lite.close(), pg.close()


def test_uid_is_idempotent_and_audit_and_images_work(pg_url, tmp_path):
    with open_store(pg_url, images_dir=tmp_path / "ng") as store:
        first = store.record(result("/lot7/a.png", 1.5), uid="same")
        assert store.record(result("/lot7/a.png", 1.5), uid="same") == first
        assert store.count() == 1 and store.has_uid("same") and not store.has_uid("other")
        image_path, _ = store.save_ng_image(result("/lot7/a.png", 1.5))
        assert image_path.startswith(str(tmp_path / "ng")) and image_path.endswith("_ng.png")
        row = store.record(result("/lot7/a.png", 1.5), image_path=image_path)
        overlay = store.attach_overlay(row, np.full((6, 8, 3), 255, np.uint8))
        assert os.path.isfile(overlay) and store.query(limit=1)[0]["overlay_path"] == overlay
        with pytest.raises(KeyError):
            store.attach_overlay(10_000, np.zeros((6, 8, 3), np.uint8))
        store.record_audit("threshold", old=1.0, new=1.2, detail={"why": "drift"}, user="qe")
        audit = store.query_audit()
        assert audit[0]["user"] == "qe" and audit[0]["new_value"] == "1.2" and audit[0]["action"] == "threshold"


def test_filters_by_station_model_hash_verdict_and_time(pg_url):
    with open_store(pg_url, station="a") as a, open_store(pg_url, station="b") as b:
        a.record(result("/1.png", 0.2, model_hash="aaaa1111"))
        b.record(result("/2.png", 1.9, model_hash="bbbb2222"))
        b.record(result("/3.png", 0.3, model_hash="aaaa1111"))
        assert [r["path"] for r in a.query(station="b")] == ["/3.png", "/2.png"]
        assert [r["path"] for r in a.query(model_hash="aaaa")] == ["/3.png", "/1.png"]
        assert [r["path"] for r in a.query(verdict="NG")] == ["/2.png"]
        assert a.query(since=__import__("datetime").datetime(2100, 1, 1)) == []
        assert len(a.query(limit=2)) == 2


def test_an_older_schema_is_migrated_and_a_newer_one_refused(pg_url):
    from inspector.storage.postgres_store import MIGRATIONS

    with psycopg.connect(pg_url, autocommit=True) as conn:  # a database left at schema 2
        for step in (1, 2):
            for statement in filter(None, (s.strip() for s in MIGRATIONS[step].split(";"))):
                conn.execute(statement)
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (2)")
        conn.execute("INSERT INTO decisions (time, source, verdict, uid) VALUES ('2025-01-01', 'cam', 'OK', 'old')")
    with open_store(pg_url, read_only=True) as reader:  # read as it is, not migrated
        assert reader.schema_version == 2 and reader.count() == 1
    with open_store(pg_url, station="s") as store:
        assert store.schema_version == SCHEMA_VERSION
        store.record(result("/n.png"), uid="new")
        store.record_audit("refit")
        rows = store.query()
        assert [(r["uid"], r["station"]) for r in rows] == [("new", "s"), ("old", None)]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        conn.execute("UPDATE schema_version SET version = 99")
    for read_only in (False, True):
        with pytest.raises(ResultStoreError, match="newer Inspector"):
            open_store(pg_url, read_only=read_only)


def test_read_only_writes_nothing_and_says_why(pg_url):
    with pytest.raises(ResultStoreError, match="no results tables"):
        open_store(pg_url, read_only=True)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('decisions')").fetchone()[0] is None  # still empty
    open_store(pg_url).close()
    with open_store(pg_url, read_only=True) as reader:
        with pytest.raises(ResultStoreError, match="read-only"):
            reader.record(result("/a.png"))
    with pytest.raises(ResultStoreError, match="cannot connect"):
        open_store(pg_url.rsplit(":", 1)[0] + ":1/none", timeout=1)


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from inspector.core.records import Frame, InspectionResult
    from inspector.storage.stores import open_store
    url, station, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = open_store(url, station=station)
    for k in range(n):
        for uid in (f"{station}-{k}", f"shared-{k}"):  # its own decision, and one both stations write
            frame = Frame(image=np.zeros((2, 2, 3), np.uint8), source="line", frame_id=k, path=f"/{uid}.png")
            store.record(InspectionResult(frame=frame, raw_score=1.0, score=0.5, threshold=2.0, anomalous=False,
                                          model_hash="m", latency_ms=1.0), uid=uid)
    store.close()
""")

READER = textwrap.dedent("""
    import sys, time
    from inspector.storage.stores import open_store
    store, last, reads = open_store(sys.argv[1], read_only=True), 0, 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = store.count()
        assert now >= last, (now, last)  # committed rows never disappear
        last, reads = now, reads + 1
        if now >= int(sys.argv[2]):
            break
    print(last, reads)
""")


def test_two_stations_write_at_once_while_a_third_reads(pg_url):
    n = 150
    open_store(pg_url).close()  # the schema exists before the reader starts
    env = dict(os.environ, OMP_NUM_THREADS="1")
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, pg_url, name, str(n)], env=env) for name in ("s1", "s2")]
    reader = subprocess.Popen([sys.executable, "-c", READER, pg_url, str(3 * n)], env=env, stdout=subprocess.PIPE,
                              text=True)
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    out, _ = reader.communicate(timeout=120)
    assert reader.returncode == 0
    final, reads = map(int, out.split())
    assert final == 3 * n and reads > 1
    with psycopg.connect(pg_url) as conn:
        total, uids = conn.execute("SELECT count(*), count(DISTINCT uid) FROM decisions").fetchone()
        per_station = dict(conn.execute("SELECT station, count(*) FROM decisions WHERE uid NOT LIKE 'shared-%' "
                                        "GROUP BY station").fetchall())
    assert total == uids == 3 * n  # nothing lost, nothing twice
    assert per_station == {"s1": n, "s2": n}


def test_results_command_queries_the_fleet(pg_url, capsys):
    from inspector.cli.main import main

    with open_store(pg_url, station="east") as east, open_store(pg_url, station="west") as west:
        east.record(result("/e.png", 0.2, model_hash="feed01"))
        west.record(result("/w.png", 1.4, model_hash="beef02"))
        west.record(result("/w2.png", 0.1, model_hash="feed01"))
    assert main(["results", "--db", pg_url, "--station", "west"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in rows] == ["/w.png", "/w2.png"]  # oldest first
    assert main(["results", "--db", pg_url, "--model-hash", "feed", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(",station,recipe") and len(lines) == 3 and lines[1].endswith(",east,")
    assert main(["results", "--db", pg_url.rsplit(":", 1)[0] + ":1/none", "--wait", "1"]) == 2
    assert "cannot connect" in capsys.readouterr().err


def test_store_holder_opens_a_url_and_keeps_the_journal_locally(pg_url, tmp_path, monkeypatch):
    from inspector.workers.store_holder import StoreHolder

    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    holder = StoreHolder(pg_url, station="cell-9")
    assert str(holder.path).startswith(str(tmp_path / "data" / "postgresql"))
    store = holder()
    assert holder() is store and store.station == "cell-9"
    store.record(result("/h.png"))
    holder.close()
    with ResultStore(tmp_path / "x.sqlite3") as lite:  # the SQLite path is unchanged
        assert lite.station and lite.count() == 0
