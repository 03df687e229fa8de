"""The station's audit trail: swaps, calibrations, the settled threshold and undo recorded off the GUI thread."""

from __future__ import annotations

import threading

import pytest

from inspector.calibration.policies import calibrate
from inspector.storage.results_db import ResultStore


@pytest.fixture
def audit_threads(monkeypatch):
    """The thread names every audit row was written from."""
    names: list[str] = []
    original = ResultStore.record_audit

    def spy(self, *args, **kwargs):
        names.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ResultStore, "record_audit", spy)
    return names


def _rows(tmp_path) -> list[dict]:
    with ResultStore(tmp_path / "data" / "results.sqlite3") as store:
        return list(reversed(store.query_audit()))


def test_station_changes_are_recorded_and_listed(make_window, qtbot, real_model, tmp_path, audit_threads):
    window = make_window()
    window.audit._timer.setInterval(200)
    station = window.station
    station.set_model(real_model, str(tmp_path / "line3.safetensors"))
    qtbot.waitUntil(lambda: len(audit_threads) == 1, timeout=5000)

    # A drag through several values: only the value the operator settles on is recorded.
    for value in (1.1, 1.2, 1.35):
        window.operator.spin.setValue(value)
    qtbot.waitUntil(lambda: len(audit_threads) == 2, timeout=5000)
    expected = real_model.threshold * 1.35
    assert station.threshold == pytest.approx(expected)

    looser = calibrate(real_model.calibration.good_scores, [], policy="frr", target=0.3)
    station.apply_calibration(looser)  # the new calibration puts the operator's threshold back: a row too
    qtbot.waitUntil(lambda: len(audit_threads) == 4, timeout=5000)
    window.undo_action.trigger()
    qtbot.waitUntil(lambda: len(audit_threads) == 5, timeout=5000)

    rows = _rows(tmp_path)
    assert [r["action"] for r in rows] == ["model_swap", "threshold", "calibration", "threshold", "calibration"]
    swap, threshold, calibration, reset, undo = rows
    assert float(reset["old_value"]) == pytest.approx(expected, rel=1e-5)
    assert reset["new_value"] == f"calibrated ({looser.threshold:.6g})" and "calibration" in reset["detail"]
    assert swap["new_model_hash"] == real_model.model_hash and swap["new_value"] == "line3.safetensors"
    assert threshold["old_value"].startswith("calibrated") and float(threshold["new_value"]) == pytest.approx(
        expected, rel=1e-5)
    assert calibration["old_value"] == f"{real_model.threshold:.6g}"
    assert calibration["new_value"] == f"{looser.threshold:.6g}"
    assert calibration["old_model_hash"] == real_model.model_hash != calibration["new_model_hash"]
    assert '"undo"' in undo["detail"] and undo["new_model_hash"] == real_model.model_hash
    assert all(r["user"] for r in rows)
    assert "MainThread" not in audit_threads  # the GUI thread never writes the database

    window.tabs.setCurrentWidget(window.audit_view)
    qtbot.waitUntil(lambda: window.audit_view.shown_actions()[:1] == ["calibration"]
                    and len(window.audit_view.rows) == 5, timeout=5000)
    assert window.audit_view.table.rowCount() == 5
    assert window.audit_view.table.item(4, 2).text() == "model_swap"


def test_unwritable_database_drops_the_row_and_says_so(make_window, qtbot, real_model, tmp_path):
    window = make_window()
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    (tmp_path / "data" / "results.sqlite3").write_bytes(b"not a database" * 100)
    messages = []
    window.station.message.connect(messages.append)
    window.station.set_model(real_model, "")
    qtbot.waitUntil(lambda: any("audit entry not recorded" in m for m in messages), timeout=5000)


def test_threshold_settled_just_before_closing_is_recorded(make_window, qtbot, real_model, tmp_path):
    window = make_window()
    window.station.set_model(real_model, "")
    window.operator.spin.setValue(1.5)
    qtbot.waitUntil(lambda: window.station.operator_threshold is not None, timeout=2000)
    window.close()  # within the settle time: flushed, and written before the worker thread stops
    rows = _rows(tmp_path)
    assert [r["action"] for r in rows] == ["model_swap", "threshold"]
    assert float(rows[1]["new_value"]) == pytest.approx(real_model.threshold * 1.5, rel=1e-5)


def test_open_audit_view_shows_a_new_row_without_refresh(make_window, qtbot, real_model):
    window = make_window()
    window.tabs.setCurrentWidget(window.audit_view)
    qtbot.waitUntil(lambda: window.audit_view.summary.text() == "no changes recorded yet", timeout=3000)
    window.station.set_model(real_model, "")
    qtbot.waitUntil(lambda: window.audit_view.shown_actions() == ["model_swap"], timeout=5000)
    assert window.audit_view.table.item(0, 4).text() == f"unsaved {real_model.model_hash[:12]}"
