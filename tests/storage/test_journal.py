"""The decision journal: durable lines, ordered idempotent replay, torn lines skipped."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from inspector.core.imageio import read_image
from inspector.core.records import Frame, InspectionResult
from inspector.storage.journal import (
    JOURNAL_FILE,
    DecisionJournal,
    JournalEntry,
    journal_folders,
    new_uid,
    replay_journals,
)
from inspector.storage.results_db import ResultStore, utc_iso

CHELSEA = Path(__file__).resolve().parents[1] / "data" / "chelsea.png"


def _entry(i: int, anomalous: bool = False) -> JournalEntry:
    return JournalEntry("result", new_uid(), utc_iso(1_700_000_000 + i), "folder:/lot", i, f"/lot/{i}.png",
                        "m" * 8, f"h{i}", 1_700_000_000.0 + i, 0.5 + i, 0.4 + i / 10, 1.25, anomalous, 3.0)


def test_replay_is_ordered_complete_and_keeps_times_and_images(tmp_path):
    journal = DecisionJournal(tmp_path / "j")
    image = read_image(CHELSEA)
    written = [journal.append(_entry(i, anomalous=i == 2), image if i == 2 else None) for i in range(5)]
    journal.append(JournalEntry("error", new_uid(), utc_iso(), "folder:/lot", 5, "/lot/5.png", "m" * 8,
                                error="not a readable image"))
    line = (tmp_path / "j" / JOURNAL_FILE).read_text().splitlines()[0]
    assert json.loads(line)["v"] == 1
    with ResultStore(tmp_path / "db.sqlite3") as store:
        assert journal.replay(store) == 6
        rows = list(reversed(store.query(limit=None)))
    assert [r["frame_id"] for r in rows] == [0, 1, 2, 3, 4, 5]
    assert [r["uid"] for r in rows[:5]] == [e.uid for e in written]
    assert rows[1]["time"] == written[1].recorded_at
    assert rows[3]["content_hash"] == "h3"
    assert rows[5]["verdict"] == "ERROR" and rows[5]["error"] == "not a readable image"
    assert rows[2]["verdict"] == "NG" and np.array_equal(read_image(rows[2]["image_path"]), image)
    assert rows[0]["image_path"] is None
    assert not (tmp_path / "j").exists(), "a drained journal is trimmed"


class _FailingAfter:
    """A store that breaks after ``n`` writes (the database failing again mid-replay)."""

    def __init__(self, store: ResultStore, n: int) -> None:
        self.store, self.n = store, n

    def has_uid(self, uid):
        return self.store.has_uid(uid)

    def save_ng_image(self, result):
        return self.store.save_ng_image(result)

    def record(self, *args, **kwargs):
        if self.n <= 0:
            raise sqlite3.OperationalError("database is locked")
        self.n -= 1
        return self.store.record(*args, **kwargs)


def test_interrupted_replay_repeated_stores_each_decision_once(tmp_path):
    journal = DecisionJournal(tmp_path / "j")
    entries = [journal.append(_entry(i)) for i in range(6)]
    with ResultStore(tmp_path / "db.sqlite3") as store:
        with pytest.raises(sqlite3.OperationalError):
            journal.replay(_FailingAfter(store, 4))
        assert journal.pending() == 2, "the replayed ones are trimmed, the rest kept"
        # Killed after storing but before trimming: the journal still lists all of them.
        again = DecisionJournal(tmp_path / "k")
        for entry in entries:
            again.append(entry)
        assert again.replay(store) == 2
        assert journal.replay(store) == 0
        uids = [r["uid"] for r in reversed(store.query(limit=None))]
    assert uids == [e.uid for e in entries]


def test_torn_last_line_is_skipped_with_a_warning(tmp_path, caplog):
    journal = DecisionJournal(tmp_path / "j")
    for i in range(3):
        journal.append(_entry(i))
    with open(journal.file, "ab") as handle:
        handle.write(_entry(3).to_line().encode()[:37])  # kill -9 in the middle of a line
    with caplog.at_level(logging.WARNING):
        assert [e.frame_id for e in journal.entries()] == [0, 1, 2]
    assert any("torn" in r.getMessage() for r in caplog.records)
    journal.append(_entry(4))  # a later session appends after the torn line, on a line of its own
    assert [e.frame_id for e in journal.entries()] == [0, 1, 2, 4]
    with ResultStore(tmp_path / "db.sqlite3") as store:
        assert journal.replay(store) == 4
        assert store.count() == 4


def test_journal_folder_falls_back_to_the_data_dir_and_replay_api_drains_both(tmp_path, monkeypatch):
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    db = tmp_path / "lot" / "results.sqlite3"
    beside, fallback = journal_folders(db)
    assert beside == db.parent / "results.sqlite3.journal"
    assert fallback.parent == tmp_path / "data" / "journals"
    assert journal_folders(tmp_path / "other" / "results.sqlite3")[1] != fallback
    first, second = _entry(0), _entry(1)
    DecisionJournal(beside).append(first)
    DecisionJournal(fallback).append(second)
    assert replay_journals(db) == 2
    with ResultStore(db) as store:
        assert store.has_uid(first.uid) and store.has_uid(second.uid)
    assert replay_journals(db) == 0


def test_unknown_version_line_is_not_replayed(tmp_path):
    journal = DecisionJournal(tmp_path / "j")
    journal.append(_entry(0))
    line = json.loads(journal.file.read_text())
    line["v"] = 99
    with open(journal.file, "a") as handle:
        handle.write(json.dumps(line) + "\n")
    assert len(journal.entries()) == 1


def test_record_keeps_frame_fields_through_the_journal(tmp_path):
    """What the recorder writes for a result equals what the store would have stored directly."""
    from inspector.workers.decision_recorder import _entry_from_result

    frame = Frame(read_image(CHELSEA), "camera:0", 7, None, 1_700_000_123.25)
    result = InspectionResult(frame, 2.5, 1.25, 2.0, True, "abc", 12.5)
    journal = DecisionJournal(tmp_path / "j")
    journal.append(_entry_from_result(result, new_uid(), utc_iso(), None), frame.image)
    with ResultStore(tmp_path / "direct.sqlite3") as direct, ResultStore(tmp_path / "replayed.sqlite3") as other:
        direct.record(result)
        journal.replay(other)
        a, b = direct.query()[0], other.query()[0]
    for column in ("frame_time", "source", "frame_id", "path", "raw_score", "score", "threshold", "verdict",
                   "model_hash", "latency_ms"):
        assert a[column] == b[column], column
    assert b["image_path"] and Path(b["image_path"]).is_file()
