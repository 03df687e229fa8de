"""``inspector results`` reads the database without changing it, and says why it cannot.

Every case: one line on stderr, exit code 2, no traceback, the file's bytes unchanged.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from inspector.cli.main import main
from inspector.core.records import Frame, InspectionResult
from inspector.storage.results_db import SCHEMA_VERSION, ResultStore


def _recorded_db(path: Path, n: int = 3) -> Path:
    with ResultStore(path) as store:
        for i in range(n):
            frame = Frame(np.zeros((4, 4, 3), np.uint8), "folder:/lot", i, path=f"/lot/{i}.png")
            store.record(InspectionResult(frame, 0.5 + i, 0.5 + i, 1.0, i > 0, "hash"), content_hash=f"c{i}")
    return path


def _results(db: Path, capsys, *extra: str) -> tuple[int, str, str]:
    code = main(["results", "--db", str(db), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("inspector: error: "), err
    return lines[0]


def test_lists_rows_without_writing(tmp_path, capsys):
    db = _recorded_db(tmp_path / "r.sqlite3")
    before = db.read_bytes()
    code, out, _ = _results(db, capsys)
    assert code == 0
    assert [json.loads(line)["frame_id"] for line in out.splitlines()] == [0, 1, 2]
    assert db.read_bytes() == before


def test_zero_byte_file_stays_zero_bytes(tmp_path, capsys):
    db = tmp_path / "empty.sqlite3"
    db.touch()
    code, out, err = _results(db, capsys)
    assert code == 2 and out == ""
    assert "empty file (0 bytes)" in _one_error_line(err)
    assert db.stat().st_size == 0


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_file_is_a_message(tmp_path, capsys, damage):
    db = tmp_path / "bad.sqlite3"
    if damage == "garbage":
        db.write_bytes(np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes())
    else:
        data = _recorded_db(tmp_path / "good.sqlite3", n=200).read_bytes()
        db.write_bytes(data[: len(data) // 2])
    before = db.read_bytes()
    code, _, err = _results(db, capsys)
    assert code == 2
    assert "corrupt or not SQLite" in _one_error_line(err)
    assert db.read_bytes() == before


def test_newer_version_is_refused_and_left_alone(tmp_path, capsys):
    db = _recorded_db(tmp_path / "newer.sqlite3")
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 9")
    conn.close()
    before = db.read_bytes()
    code, _, err = _results(db, capsys)
    assert code == 2
    assert f"written by a newer Inspector (schema 9 > {SCHEMA_VERSION})" in _one_error_line(err)
    assert db.read_bytes() == before


def test_schema_1_rollback_database_is_read_as_it_is(tmp_path, capsys):
    """No upgrade and no WAL switch: the file keeps schema 1 and its rollback journal."""
    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, "
                 "source TEXT NOT NULL, frame_id INTEGER, path TEXT, verdict TEXT NOT NULL)")
    conn.execute("INSERT INTO decisions (time, source, frame_id, verdict) VALUES ('2026-01-01', 'cam', 7, 'OK')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    code, out, _ = _results(db, capsys, "--format", "csv")
    assert code == 0
    assert out.splitlines()[1] == "1,2026-01-01,cam,7,,,,,OK,,,,,,,"  # the last empty fields: station, recipe
    assert db.read_bytes() == before
    assert before[18:20] == b"\x01\x01"  # file format bytes: 1 = rollback journal (2 would be WAL)
    assert not Path(f"{db}-wal").exists()


def test_locked_database_is_a_message_after_the_wait(tmp_path, capsys):
    db = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE decisions (id INTEGER PRIMARY KEY, time TEXT, source TEXT, verdict TEXT)")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO decisions (time, source, verdict) VALUES ('t', 's', 'OK')")
    try:
        code, _, err = _results(db, capsys, "--wait", "0.2")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 2
    assert "database is locked by another process" in _one_error_line(err)


def test_wal_database_written_by_a_running_station_is_read(tmp_path, capsys):
    """A station holding the database open (WAL, not checkpointed) does not stop the listing."""
    db = tmp_path / "live.sqlite3"
    _recorded_db(db)
    store = ResultStore(db)  # open, as the station holds it
    try:
        frame = Frame(np.zeros((4, 4, 3), np.uint8), "camera:0", 99)
        store.record(InspectionResult(frame, 2.0, 2.0, 1.0, True, "hash"))
        assert Path(f"{db}-wal").stat().st_size > 0  # the decision is in the WAL, not yet in the file
        code, out, _ = _results(db, capsys)
    finally:
        store.close()
    assert code == 0
    assert [json.loads(line)["frame_id"] for line in out.splitlines()][-1] == 99


def test_read_only_file_and_folder_are_read(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    db = _recorded_db(folder / "r.sqlite3")
    before = db.read_bytes()
    db.chmod(0o444)
    folder.chmod(0o555)
    try:
        code, out, _ = _results(db, capsys)
    finally:
        folder.chmod(0o755)
        db.chmod(0o644)
    assert code == 0 and len(out.splitlines()) == 3
    assert db.read_bytes() == before


@pytest.mark.parametrize("what", ["missing", "folder"])
def test_missing_database_or_a_folder_is_a_message(tmp_path, capsys, what):
    db = tmp_path / "none.sqlite3"
    if what == "folder":
        db.mkdir()
    code, _, err = _results(db, capsys)
    assert code == 2
    line = _one_error_line(err)
    assert ("no results database" if what == "missing" else "is a folder") in line
    assert os.path.isdir(db) == (what == "folder")  # nothing created
