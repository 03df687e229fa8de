"""A station killed mid-run resumes without duplicates; --quit-after always ends.

kill -9 of ``inspector gui`` in a subprocess at a random point of a folder run, then
a restart on the same folder: every file is recorded exactly once. And the
``--quit-after`` launcher gives up (exit 2) on a camera that is not there and on a
model that fails on every frame, instead of waiting forever.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gui"))

from gui_stubs import Recorder, gray_folder, stub_model  # noqa: E402

CHILD = ("import sys; sys.path.insert(0, {gui!r}); import gui_stubs; "
         "from inspector.cli.main import main; sys.exit(main(sys.argv[1:]))")
N_FILES = 150


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as connection:
            return connection.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_kill_9_mid_folder_run_then_restart_records_every_file_once(tmp_path):
    model = tmp_path / "stub.safetensors"
    stub_model(threshold=0.5).save(model)
    images = gray_folder(tmp_path / "parts", [40 + (i * 37) % 200 for i in range(N_FILES)])
    db = tmp_path / "db" / "results.sqlite3"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1",
               INSPECTOR_CONFIG_DIR=str(tmp_path / "config"), INSPECTOR_DATA_DIR=str(tmp_path / "data"))
    command = [sys.executable, "-c", CHILD.format(gui=str(REPO / "tests" / "gui")), "-v", "gui", "--model",
               str(model), "--source", f"folder:{tmp_path / 'parts'}", "--quit-after", "100000", "--db", str(db)]
    kill_at = random.Random().randint(3, N_FILES - 30)
    child = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while _count(db) < kill_at and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    before = _count(db)
    assert 0 < before < N_FILES, f"killed at {before} of {N_FILES} rows (aimed at {kill_at})"

    again = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resumed: {before} files already recorded, skipped" in again.stderr
    with sqlite3.connect(db) as connection:
        paths = [row[0] for row in connection.execute("SELECT path FROM decisions ORDER BY id")]
    assert sorted(paths) == sorted(str(p) for p in images), "every file exactly once: none missing, no duplicate"


# -- --quit-after ends: the launcher in-process, with the real camera source and a failing model -------


@pytest.fixture
def launch(qtbot, tmp_path, monkeypatch):
    """Build window + Launcher as ``run_gui`` does (without its event loop); closed after the test."""
    from inspector.gui import app
    from inspector.gui.main_window import MainWindow
    from inspector.storage.settings import load_settings
    from inspector.workers.station import Station
    from inspector.workers.store_holder import StoreHolder

    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    windows = []

    def build(spec: str, give_up_s: float = 1.5):
        monkeypatch.setattr(app, "SOURCE_GIVE_UP_S", give_up_s)
        station = Station(StoreHolder(tmp_path / "data" / "results.sqlite3"))
        window = MainWindow(station, load_settings()[0])
        qtbot.addWidget(window)
        launcher = app.Launcher(window, spec, autostart=True, quit_after=3)
        window.show()
        windows.append(window)
        return window, launcher

    yield build
    for window in windows:
        window.close()


def test_quit_after_gives_up_on_an_absent_camera_with_exit_2(launch, qtbot, capsys):
    window, launcher = launch("camera:0")  # no camera on the test machines
    started = time.monotonic()
    window.station.set_model(stub_model(), "")
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=15000)
    assert launcher.exit_code == 2
    assert time.monotonic() - started < 10
    assert "camera:0: no frame for 1.5 s" in capsys.readouterr().err
    assert launcher.frames == 0


def test_quit_after_gives_up_on_a_model_that_fails_every_frame(launch, qtbot, tmp_path, capsys):
    gray_folder(tmp_path / "parts", [60] * 12)
    window, launcher = launch(f"folder:{tmp_path / 'parts'}")
    model = stub_model()

    def broken(images, with_maps):
        raise RuntimeError("size mismatch for weight: copying a param with shape [8] into [16]")

    model.detector._pass = broken
    errors = Recorder()
    window.station.inspection.error_occurred.connect(errors.record)
    window.station.set_model(model, "")
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=15000)
    assert launcher.exit_code == 2
    err = capsys.readouterr().err
    assert "the model failed on every frame" in err and "size mismatch" in err
    assert sum(1 for (m,) in errors.calls if m.startswith("inspection failed")) == 5
