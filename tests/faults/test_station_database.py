"""Faults of the results database under a running station: nothing is lost, the exit code says so.

Real code paths: the station (in-process, offscreen) or ``inspector gui --quit-after`` in
a subprocess, the real model facade over the cheap registered BrightnessDetector of
``tests/gui/gui_stubs.py``, real PNG files, and a second process locking the database.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gui"))

from gui_stubs import Recorder, gray_folder, stub_model  # noqa: E402

from inspector.storage.journal import JOURNAL_FILE, DecisionJournal, journal_folders, replay_journals  # noqa: E402
from inspector.storage.results_db import ResultStore  # noqa: E402

LEVELS = [60, 200, 70, 80, 210, 90, 50, 220]  # 3 NG at threshold 0.5


CHILD = ("import sys; sys.path.insert(0, {gui!r}); import gui_stubs; "
         "from inspector.cli.main import main; sys.exit(main(sys.argv[1:]))")


def run_station(*args: str, env: dict, timeout: float = 90, user: int | None = None) -> subprocess.CompletedProcess:
    """``inspector gui ARGS`` in a subprocess that knows the stub detector."""
    code = CHILD.format(gui=str(REPO / "tests" / "gui"))
    return subprocess.run([sys.executable, "-c", code, "gui", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, user=user)


def station_env(root: Path) -> dict:
    """A fresh config and data folder (the journal's fallback place) for a child station."""
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1",
                INSPECTOR_CONFIG_DIR=str(root / "config"), INSPECTOR_DATA_DIR=str(root / "data"))


def rows_of(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT path, verdict, uid, time, image_path FROM decisions ORDER BY id").fetchall()


@pytest.fixture
def world(tmp_path):
    """A stub model file, a folder of real PNGs, and a world-readable scratch root."""
    root = Path(tempfile.mkdtemp(prefix="inspector-faults-"))
    os.chmod(root, 0o777)
    model = root / "stub.safetensors"
    stub_model(threshold=0.5).save(model)
    images = gray_folder(root / "parts", LEVELS)
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o777 if path.is_dir() else 0o666)
    yield root, model, images
    for path in root.rglob("*"):
        if path.is_dir():
            os.chmod(path, 0o777)
    import shutil

    shutil.rmtree(root, ignore_errors=True)


# -- a database locked by another process, under a running station (in-process) ---------------------

LOCKER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("ROLLBACK")
"""


def test_locked_database_loses_nothing_and_keeps_order(qtbot, tmp_path, monkeypatch):
    from inspector.gui.main_window import MainWindow
    from inspector.storage.settings import load_settings
    from inspector.workers.station import Station
    from inspector.workers.store_holder import StoreHolder
    from inspector.workers.thread_host import running_worker_threads

    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "parts"
    images = gray_folder(folder, LEVELS * 4)
    db = tmp_path / "db" / "results.sqlite3"
    ResultStore(db).close()
    station = Station(StoreHolder(db, busy_timeout_s=0.3))
    window = MainWindow(station, load_settings()[0])
    qtbot.addWidget(window)
    window.show()
    states = Recorder()
    station.inspection.recording_state_changed.connect(states.record)
    finished = Recorder()
    station.inspection.run_state_changed.connect(finished.record)
    station.set_model(stub_model(threshold=0.5, delay=0.04), "")
    station.store()  # the station has been running: its database is open when the lock comes

    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(db), "3.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"
        started = time.monotonic()
        window.open_source(f"folder:{folder}", start=True)
        qtbot.waitUntil(lambda: bool(window.status.recording_text), timeout=5000)
        assert "results database unavailable" in window.status.recording_text
        assert "waiting in the journal" in window.status.recording_text
        assert time.monotonic() - started < 3.5, "the lock outlasted the store's timeout while frames ran"
        qtbot.waitUntil(lambda: ("finished",) in finished.calls, timeout=15000)
    finally:
        locker.wait(timeout=20)
    qtbot.waitUntil(lambda: window.status.recording_text == "" and states.calls[-1][0].healthy, timeout=15000)
    assert max(state[0].waiting for state in states.calls) > 0
    window.close()
    assert running_worker_threads() == []
    rows = rows_of(db)
    assert [r[0] for r in rows] == [str(p) for p in images], "every decision, once, in the order made"
    assert len({r[2] for r in rows}) == len(rows)
    assert [r[3] for r in rows] == sorted(r[3] for r in rows), "each keeps the time it was made"
    assert all(r[4] and Path(r[4]).is_file() for r in rows if r[1] == "NG")
    assert not any((folder / JOURNAL_FILE).is_file() for folder in journal_folders(db))


def test_database_corrupted_under_a_running_station_journals_what_it_cannot_write(qtbot, tmp_path, monkeypatch):
    """The database file overwritten with garbage mid-run: later decisions wait in the journal, the
    status bar says so, and once the file is replaced the journal fills the new one: each decision
    made is in the file before the damage or in the replayed one, exactly once (the decisions the
    damaged file held are gone with it: the station cannot save another program's damage)."""
    from inspector.gui.main_window import MainWindow
    from inspector.storage.settings import load_settings
    from inspector.workers.station import Station
    from inspector.workers.store_holder import StoreHolder

    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "parts"
    images = gray_folder(folder, LEVELS * 4)
    db = tmp_path / "db" / "results.sqlite3"
    station = Station(StoreHolder(db, busy_timeout_s=0.3))
    window = MainWindow(station, load_settings()[0])
    qtbot.addWidget(window)
    window.show()
    finished, results = Recorder(), Recorder()
    station.inspection.run_state_changed.connect(finished.record)
    station.inspection.result_ready.connect(results.record)
    station.set_model(stub_model(threshold=0.5, delay=0.05), "")
    window.open_source(f"folder:{folder}", start=True)
    qtbot.waitUntil(lambda: len(results.calls) >= 8, timeout=15000)
    # Pause, so that no decision is written between reading the file and damaging it. Opening the
    # source already emitted "paused" once: wait for the state this pause emits, not that one.
    states_before = len(finished.calls)
    station.pause()
    qtbot.waitUntil(lambda: ("paused",) in finished.calls[states_before:], timeout=5000)
    before = {row[2] for row in rows_of(db)}  # what the intact file held
    assert len(before) == len(results.calls)
    size = db.stat().st_size
    with open(db, "r+b") as handle:  # another program scribbles over the file while the station runs
        handle.write(os.urandom(max(size, 8192)))
    # The -wal and -shm files too, in place and at their own size: SQLite maps the -shm file,
    # and shrinking a mapped file under the map kills the process (SIGBUS), which is not this fault.
    for side in (Path(f"{db}-wal"), Path(f"{db}-shm")):
        if side.exists() and side.stat().st_size:
            with open(side, "r+b") as handle:
                handle.write(os.urandom(side.stat().st_size))
    made_before, started = len(results.calls), time.monotonic()
    station.start()

    def shown() -> None:
        assert "results database unavailable" in window.status.recording_text, (
            f"after {time.monotonic() - started:.1f} s and {len(results.calls) - made_before} more decisions, "
            f"the status says {window.status.recording_text!r}; recorder: {station.recorder.state}")

    qtbot.waitUntil(shown, timeout=15000)
    qtbot.waitUntil(lambda: ("finished",) in finished.calls, timeout=20000)
    made = len(results.calls)
    window.close()
    assert made == len(images)

    db.rename(db.with_suffix(".damaged"))
    for side in (Path(f"{db}-wal"), Path(f"{db}-shm")):
        side.unlink(missing_ok=True)
    replayed = replay_journals(db)
    after = {row[2] for row in rows_of(db)}
    assert replayed == len(after) > 0
    assert not (before & after), "no decision both in the damaged file and replayed"
    assert len(before) + len(after) == made, "every decision made: in the intact file or replayed"
    paths = [row[0] for row in rows_of(db)]
    assert paths == sorted(paths, key=lambda p: [str(i) for i in images].index(p)), "replayed in the order made"


# -- a broken database under `gui --quit-after` (subprocess) ------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_database_file_exits_4_with_every_decision_journalled(world, damage):
    root, model, images = world
    db = root / "db" / "results.sqlite3"
    if damage == "garbage":
        db.parent.mkdir()
        db.write_bytes(os.urandom(3000))
    else:
        with ResultStore(db) as store:  # a real database cut short (a copy interrupted)
            for _ in range(200):
                store.record_error("folder:/x", "filler " * 20)
        data = db.read_bytes()
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        db.write_bytes(data[: len(data) // 3])
    env = station_env(root)
    done = run_station("--model", str(model), "--source", f"folder:{root / 'parts'}", "--quit-after", "50",
                       "--db", str(db), env=env)
    assert done.returncode == 4, done.stderr[-3000:]
    assert f"{len(images)} decisions could not be written" in done.stderr
    journal = DecisionJournal(journal_folders(db)[0])
    assert journal.file.is_file() and str(journal.folder) in done.stderr
    entries = journal.entries()
    assert [e.path for e in entries] == [str(p) for p in images]
    assert sum(1 for e in entries if e.image) == 3, "NG frames kept as PNG in the journal"
    assert len({e.uid for e in entries}) == len(entries)
    if damage == "truncated":
        return  # the restart below is the same for both

    # Fixed (the broken file moved away): the next start drains the journal before anything else.
    db.rename(db.with_suffix(".broken"))
    again = run_station("--model", str(model), "--source", f"folder:{root / 'parts'}", "--quit-after", "50",
                        "--db", str(db), env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    rows = rows_of(db)
    assert [r[2] for r in rows] == [e.uid for e in entries], "replayed in order, and resumed: nothing re-scored"
    assert all(r[4] and Path(r[4]).is_file() for r in rows if r[1] == "NG")
    assert not journal.file.exists()


def _as_nobody() -> int | None:
    """Root ignores file modes: run the child as ``nobody`` so that a read-only folder is read-only."""
    return 65534 if os.geteuid() == 0 else None


def test_read_only_database_folder_exits_4_then_replay_api_drains(world, monkeypatch):
    root, model, images = world
    db = root / "db" / "results.sqlite3"
    with ResultStore(db) as store:
        store.record_error("folder:/earlier", "an earlier decision")
    os.chmod(db, 0o444)
    os.chmod(db.parent, 0o555)
    env = station_env(root)
    done = run_station("--model", str(model), "--source", f"folder:{root / 'parts'}", "--quit-after", "50",
                       "--db", str(db), env=env, user=_as_nobody())
    assert done.returncode == 4, done.stderr[-3000:]
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(root / "data"))
    fallback = DecisionJournal(journal_folders(db)[1])
    assert fallback.folder.parent == root / "data" / "journals", "the data folder, as the DB folder is read-only"
    assert [e.path for e in fallback.entries()] == [str(p) for p in images]
    assert str(fallback.folder) in done.stderr

    os.chmod(db.parent, 0o777)
    os.chmod(db, 0o666)
    assert replay_journals(db) == len(images)
    assert replay_journals(db) == 0
    rows = rows_of(db)
    assert [r[0] for r in rows[1:]] == [str(p) for p in images]
    assert sum(1 for r in rows if r[1] == "NG") == 3


def test_read_only_database_file_exits_4(world):
    root, model, images = world
    db = root / "db" / "results.sqlite3"
    ResultStore(db).close()
    os.chmod(db.parent, 0o777)
    os.chmod(db, 0o444)
    done = run_station("--model", str(model), "--source", f"folder:{root / 'parts'}", "--quit-after", "3",
                       "--db", str(db), env=station_env(root), user=_as_nobody())
    assert done.returncode == 4, done.stderr[-3000:]
    assert "3 decisions could not be written" in done.stderr
    assert len(DecisionJournal(journal_folders(db)[0]).entries()) == 3
