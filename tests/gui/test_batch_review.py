"""The engineer's batch review: table, detail with heatmap, exports, and resume after a stop."""

from __future__ import annotations

import csv

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
