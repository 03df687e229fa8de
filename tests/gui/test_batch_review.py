"""The engineer's batch review: table, detail with heatmap, exports, and resume after a stop."""

from __future__ import annotations

import csv

import numpy as np

from gui_stubs import Recorder, gray_folder, stub_model
from PySide6.QtCore import Qt

from inspector.gui.batch_table import SCORE, VERDICT


def _run_to_end(window, qtbot, folder):
    finished = Recorder()
    window.station.batch.batch_finished.connect(finished.record)
    window.batch.run(str(folder))
    qtbot.waitUntil(lambda: bool(finished.calls), timeout=10000)
    return finished.calls[-1][0]


def test_batch_fills_table_shows_detail_and_exports(make_window, qtbot, tmp_path):
    folder = tmp_path / "lot7"
    gray_folder(folder, [60, 200, 70, 220, 90])
    (folder / "broken.png").write_bytes(b"not a png")
    window = make_window()
    window.station.set_model(stub_model(threshold=0.5), "")
    window.tabs.setCurrentWidget(window.batch)
    summary = _run_to_end(window, qtbot, folder)

    assert "6 files" in summary
    model = window.batch.model
    assert model.counts() == {"OK": 3, "NG": 2, "ERROR": 1}
    proxy = window.batch.proxy
    # sorted by score, highest first
    assert proxy.data(proxy.index(0, VERDICT)) == "NG"
    window.batch.filter_verdict.setCurrentText("NG")
    assert proxy.rowCount() == 2
    window.batch.filter_verdict.setCurrentText("All")
    window.batch.filter_text.setText("img_001")
    assert proxy.rowCount() == 1
    window.batch.filter_text.setText("")
    proxy.sort(SCORE, Qt.SortOrder.AscendingOrder)
    assert proxy.data(proxy.index(0, VERDICT)) == "ERROR"
    assert proxy.data(proxy.index(1, VERDICT)) == "OK"

    window.batch.table.selectRow(1)
    qtbot.waitUntil(lambda: window.batch.detail.heatmap_shown, timeout=3000)

    exported = Recorder()
    window.station.batch.export_finished.connect(exported.record)
    window.batch.export_csv(str(tmp_path / "out.csv"))
    window.batch.export_html(str(tmp_path / "out.html"))
    qtbot.waitUntil(lambda: len(exported.calls) == 2, timeout=5000)
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert sorted(r["verdict"] for r in rows) == ["ERROR", "NG", "NG", "OK", "OK", "OK"]
    html = (tmp_path / "out.html").read_text()
    assert html.count("data:image/png;base64,") == 4  # two NG images, each with its overlay
    assert "img_001.png" in html and "broken.png" in html

    # the threshold re-decides the table too (no rescoring)
    window.station.set_threshold(0.9)
    assert model.counts() == {"OK": 5, "NG": 0, "ERROR": 1}


def test_batch_resumes_without_rescoring(make_window, qtbot, tmp_path):
    folder = tmp_path / "lot8"
    gray_folder(folder, [60 + i * 7 for i in range(24)])
    first = make_window()
    slow = stub_model(threshold=0.5, delay=0.15)
    first.station.set_model(slow, "")
    rows = Recorder()
    first.station.batch.rows_ready.connect(rows.record)
    finished = Recorder()
    first.station.batch.batch_finished.connect(finished.record)
    first.batch.run(str(folder))
    qtbot.waitUntil(lambda: bool(rows.calls), timeout=5000)
    first.batch.stop_button.click()
    qtbot.waitUntil(lambda: bool(finished.calls), timeout=5000)
    assert "resume" in finished.calls[-1][0]
    done_before = slow.detector.images_scored.value
    assert 0 < done_before < 24
    first.close()  # the app stops mid-batch

    second = make_window()
    again = stub_model(threshold=0.5)  # same model (same hash), new process
    second.station.set_model(again, "")
    started = Recorder()
    second.station.batch.batch_started.connect(started.record)
    _run_to_end(second, qtbot, folder)
    assert started.calls[-1][1:] == (24 - done_before, done_before)
    assert again.detector.images_scored.value == 24 - done_before, "files already done are not scored twice"
    assert len(second.batch.model.rows) == 24


def _db_rows(path):
    from inspector.storage.results_db import ResultStore

    with ResultStore.open_read_only(path) as store:
        return store.query(limit=None)


def _scored(window, qtbot, start):
    """Run ``start()`` to the end; returns (files to score, files kept) from batch_started."""
    started, finished = Recorder(), Recorder()
    window.station.batch.batch_started.connect(started.record)
    window.station.batch.batch_finished.connect(finished.record)
    start()
    qtbot.waitUntil(lambda: bool(finished.calls), timeout=10000)
    window.station.batch.batch_started.disconnect(started.record)
    window.station.batch.batch_finished.disconnect(finished.record)
    return started.calls[-1][1:]


def _verdicts(window):
    from pathlib import Path

    model = window.batch.model
    return {Path(row.path).name: row.verdict(model.threshold) for row in model.rows}


def test_resume_rescores_a_replaced_file_and_a_fixed_one(make_window, qtbot, tmp_path, isolated_dirs):
    from inspector.core.imageio import write_image

    folder = tmp_path / "lot9"
    paths = gray_folder(folder, [60, 70, 80, 90])
    (folder / "broken.png").write_bytes(b"not a png")
    window = make_window()
    model = stub_model(threshold=0.5)
    window.station.set_model(model, "")
    assert _scored(window, qtbot, lambda: window.batch.run(str(folder))) == (5, 0)
    assert _verdicts(window)["img_001.png"] == "OK" and _verdicts(window)["broken.png"] == "ERROR"

    # same name, new bytes: a bright (NG) image replaces a dark one; the broken file is fixed
    write_image(paths[1], np.full((40, 48, 3), 230, np.uint8))
    write_image(folder / "broken.png", np.full((40, 48, 3), 70, np.uint8))
    scored_before = model.detector.images_scored.value
    assert _scored(window, qtbot, lambda: window.batch.run(str(folder))) == (2, 3)
    assert model.detector.images_scored.value - scored_before == 2, "only the two changed files are scored"
    assert _verdicts(window) == {"img_000.png": "OK", "img_001.png": "NG", "img_002.png": "OK",
                                 "img_003.png": "OK", "broken.png": "OK"}
    rows = _db_rows(isolated_dirs / "data" / "results.sqlite3")
    assert len(rows) == 7 and all(row["content_hash"] for row in rows)

    # nothing changed: nothing scored
    assert _scored(window, qtbot, lambda: window.batch.run(str(folder))) == (0, 5)
    assert len(window.batch.model.rows) == 5


def test_rescore_all_and_rescore_selected(make_window, qtbot, tmp_path, isolated_dirs):
    folder = tmp_path / "lot10"
    gray_folder(folder, [60, 200, 70, 220])
    window = make_window()
    model = stub_model(threshold=0.5)
    window.station.set_model(model, "")
    _scored(window, qtbot, lambda: window.batch.run(str(folder)))
    assert _scored(window, qtbot, window.batch.rescore_button.click) == (4, 0)
    assert model.detector.images_scored.value == 8
    assert len(window.batch.model.rows) == 4, "one row per file: the newest verdict"

    proxy = window.batch.proxy
    window.batch.filter_text.setText("img_002")
    window.batch.table.selectRow(0)
    window.batch.filter_text.setText("")
    assert window.batch.selected_paths() == [str(folder / "img_002.png")]
    assert window.batch.rescore_selected_button.isEnabled()
    qtbot.waitUntil(lambda: window.batch.detail.heatmap_shown, timeout=3000)  # the selection's map
    scored_before = model.detector.images_scored.value
    assert _scored(window, qtbot, window.batch.rescore_selected_button.click) == (1, 3)
    assert model.detector.images_scored.value == scored_before + 1
    assert sorted(_verdicts(window)) == ["img_000.png", "img_001.png", "img_002.png", "img_003.png"]
    assert proxy.rowCount() == 4
    rows = _db_rows(isolated_dirs / "data" / "results.sqlite3")
    counts = {}
    for row in rows:
        counts[row["path"].rsplit("/", 1)[-1]] = counts.get(row["path"].rsplit("/", 1)[-1], 0) + 1
    assert counts == {"img_000.png": 2, "img_001.png": 2, "img_002.png": 3, "img_003.png": 2}
