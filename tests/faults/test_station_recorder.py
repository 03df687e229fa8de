"""The decision recorder and the station's resume, in-process with real files and a real database."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gui"))

from gui_stubs import Recorder, gray_folder, stub_model  # noqa: E402

from inspector.core.imageio import read_image, write_image  # noqa: E402
from inspector.core.records import Frame, InspectionResult  # noqa: E402
from inspector.workers.decision_recorder import DecisionRecorder  # noqa: E402
from inspector.workers.store_holder import StoreHolder  # noqa: E402

CHELSEA = REPO / "tests" / "data" / "chelsea.png"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _result(i: int, anomalous: bool) -> InspectionResult:
    frame = Frame(read_image(CHELSEA), "camera:0", i, None, 1_700_000_000.0 + i)
    return InspectionResult(frame, 2.0 if anomalous else 0.5, 1.6 if anomalous else 0.4, 1.25, anomalous, "m1")


def test_store_that_cannot_be_opened_is_retried_and_the_journal_replayed(tmp_path, monkeypatch):
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    db = tmp_path / "results.sqlite3"
    db.write_bytes(b"this is no database " * 100)
    clock = FakeClock()
    holder = StoreHolder(db)
    recorder = DecisionRecorder(holder, clock=clock)
    assert recorder.record(_result(0, True)) == (None, None)
    recorder.record_error("camera:0", "frame lost", None, 1, "m1")
    assert recorder.record(_result(2, False)) == (None, None)
    state = recorder.state
    assert state.waiting == 3 and not state.healthy
    assert "not a usable results database" in state.error
    assert state.describe().startswith("results database unavailable: 3 decisions waiting in the journal (")

    db.unlink()  # fixed: the operator moved the broken file away
    clock.now += 0.5
    assert recorder.flush().waiting == 3, "back-off: not retried before it is due"
    clock.now += 1.0
    assert recorder.flush().healthy
    row_id, image_path = recorder.record(_result(3, True))
    assert row_id is not None and Path(image_path).is_file(), "straight to the database again"
    rows = list(reversed(holder().query(limit=None)))
    assert [(r["frame_id"], r["verdict"]) for r in rows] == [(0, "NG"), (1, "ERROR"), (2, "OK"), (3, "NG")]
    assert np.array_equal(read_image(rows[0]["image_path"]), read_image(CHELSEA))
    holder.close()


def test_restart_on_the_same_folder_skips_recorded_files_and_rescores_replaced_ones(qtbot, tmp_path, monkeypatch):
    from inspector.gui.main_window import MainWindow
    from inspector.storage.settings import load_settings
    from inspector.workers.station import Station

    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "parts"
    paths = gray_folder(folder, [60, 70, 80, 90, 100])
    db = tmp_path / "data" / "results.sqlite3"
    model = stub_model(threshold=0.5)

    def run_once() -> list[str]:
        station = Station(StoreHolder(db))
        window = MainWindow(station, load_settings()[0])
        qtbot.addWidget(window)
        window.show()
        states, messages = Recorder(), Recorder()
        station.inspection.run_state_changed.connect(states.record)
        station.message.connect(messages.record)
        station.set_model(model, "")
        window.open_source(f"folder:{folder}", start=True)
        qtbot.waitUntil(lambda: ("finished",) in states.calls, timeout=10000)
        window.close()
        return [m for (m,) in messages.calls]

    run_once()
    write_image(paths[2], np.full((40, 48, 3), 200, np.uint8))  # replaced under the same name
    messages = run_once()
    assert "resumed: 4 files already recorded, skipped" in messages
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT path, verdict, content_hash FROM decisions ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [str(p) for p in paths] + [str(paths[2])]
    assert rows[-1][1] == "NG" and rows[2][1] == "OK", "the new content got its own decision"
    assert rows[-1][2] != rows[2][2]
    assert model.detector.images_scored.value == 6


LOCKER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("ROLLBACK")
"""


def test_database_locked_before_the_station_opens_it_is_journalled_without_a_long_stall(tmp_path, monkeypatch):
    import subprocess
    import time

    from inspector.storage.results_db import ResultStore

    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    db = tmp_path / "results.sqlite3"
    ResultStore(db).close()
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(db), "2.0"], stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"
        recorder = DecisionRecorder(StoreHolder(db, busy_timeout_s=0.3))
        started = time.monotonic()
        assert recorder.record(_result(0, True)) == (None, None)
        assert time.monotonic() - started < 1.5, "not the store's own 10 s open timeout"
        assert "locked" in recorder.state.error and recorder.state.waiting == 1
    finally:
        locker.wait(timeout=20)
    assert recorder.flush(force=True).healthy
    with ResultStore(db) as store:
        assert [r["verdict"] for r in store.query()] == ["NG"]
