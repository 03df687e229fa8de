"""kill -9 of the batch review at seeded random moments, then a restart on the same folder.

The batch review's worker (:class:`~inspector.workers.batch_worker.BatchWorker`, what
the *Batch review* tab runs) is driven headless in a subprocess with a
QCoreApplication, the test detector of the GUI tests (slowed down so that a kill
lands mid-batch) and a real results database. Whatever the moment of the kill,
after the restarts every file of the folder has exactly one row for the model and
its current bytes: none missing, none twice; a file whose bytes were replaced under
the same name between the kills and the restart is scored again, and no other
file that was done.
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

import numpy as np
import pytest

from inspector.core.imageio import write_image
from inspector.storage.results_db import file_digest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

GUI_TESTS = Path(__file__).resolve().parents[1] / "gui"
FILES = 48  # six chunks of eight
SEED = 11
KILLS = 3

SCRIPT = """
import os, sys
sys.path.insert(0, {gui_tests!r})
from PySide6.QtCore import QCoreApplication, QTimer
from gui_stubs import stub_model
from inspector.storage.results_db import ResultStore
from inspector.workers.batch_worker import BatchWorker

folder, db, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
app = QCoreApplication([])
store = ResultStore(db)
worker = BatchWorker(lambda: store)
worker.set_model(stub_model(threshold=0.5, delay=delay))
worker.batch_started.connect(lambda source, total, kept: print("started", total, kept, flush=True))
worker.error_occurred.connect(lambda message: print("error", message, flush=True))
worker.batch_finished.connect(lambda summary: (print("finished", summary, flush=True), app.quit()))
QTimer.singleShot(0, lambda: worker.run(folder))
app.exec()
store.close()
"""


def _folder(root: Path) -> list[Path]:
    """Images written by OpenCV: noisy gray levels, a few of them bright (NG for the test detector)."""
    rng = np.random.default_rng(3)
    folder = root / "lot"
    folder.mkdir()
    paths = []
    for i in range(FILES):
        level = 200 if i % 7 == 0 else 60 + i
        image = np.clip(rng.normal(level, 12, (40, 48, 3)), 0, 255).astype(np.uint8)
        paths.append(folder / f"part_{i:03d}.png")
        write_image(paths[-1], image)
    return paths


def _start(script: Path, folder: Path, db: Path, delay: float) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen")
    return subprocess.Popen([sys.executable, str(script), str(folder), str(db), str(delay)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0  # not created yet


def _run_to_end(script: Path, folder: Path, db: Path) -> str:
    process = _start(script, folder, db, 0.0)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "finished batch done" in out, out + err
    return out


def _rows(db: Path) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM decisions WHERE verdict != 'ERROR' ORDER BY id")]
    finally:
        conn.close()


def _current_rows_per_file(db: Path, paths: list[Path]) -> dict[str, int]:
    digests = {str(p): file_digest(p) for p in paths}
    counts = {str(p): 0 for p in paths}
    for row in _rows(db):
        if row["path"] in digests and row["content_hash"] == digests[row["path"]]:
            counts[row["path"]] += 1
    return counts


def test_kill_9_at_random_points_then_restart_leaves_one_row_per_file(tmp_path):
    paths = _folder(tmp_path)
    folder, db = paths[0].parent, tmp_path / "results.sqlite3"
    script = tmp_path / "batch.py"
    script.write_text(SCRIPT.format(gui_tests=str(GUI_TESTS)))
    rng = random.Random(SEED)
    killed_at = []
    for _ in range(KILLS):
        before = _count(db)
        left = FILES - before
        if left < 2:
            break
        target = before + rng.randint(1, min(left - 1, 14))  # within the next two chunks
        process = _start(script, folder, db, delay=0.4)
        deadline = time.monotonic() + 60
        while _count(db) < target and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))  # in a pass, or between the rows of a chunk
        process.send_signal(signal.SIGKILL)
        out, err = process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL, f"the batch ended before the kill: {out} {err}"
        killed_at.append(_count(db))
        assert killed_at[-1] >= target
    assert len(killed_at) >= 2 and killed_at[0] < FILES, killed_at

    # meanwhile, new bytes under the name of a file already scored: it is scored again, it alone
    changed = Path(_rows(db)[1]["path"])
    write_image(changed, np.full((40, 48, 3), 230, np.uint8))
    out = _run_to_end(script, folder, db)
    kept = killed_at[-1] - 1
    assert f"started {FILES - kept} {kept}" in out, "the restart resumes: files done are not scored again"
    counts = _current_rows_per_file(db, paths)
    assert [p for p, n in counts.items() if n == 0] == [], "files missing"
    assert [p for p, n in counts.items() if n > 1] == [], "files recorded twice"
    rows = _rows(db)
    assert len(rows) == FILES + 1  # the replaced file's first row stays, as history
    latest = [row for row in rows if row["path"] == str(changed)]
    assert len(latest) == 2 and latest[-1]["content_hash"] == file_digest(changed) != latest[0]["content_hash"]
    assert latest[-1]["verdict"] == "NG"
