"""The window obeys the line: MQTT commands (trigger, start, stop, recipe) from a real Mosquitto drive the real
window over the real model facade. Commands arrive on paho's thread and are carried out on the GUI thread;
the recipe switch is in the audit trail and in every later row and message."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading  # noqa: E402

import pytest  # noqa: E402

from tests.line.line_support import unique_in_order, write_frames  # noqa: E402


@pytest.fixture
def station_window(qtbot, tmp_path, line_model, broker, monkeypatch):
    """The window as ``inspector gui --recipe part-a --mqtt URL --station cell-w`` builds it (run_gui's steps)."""
    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    from inspector.cli.gui_cmd import WindowPublisher
    from inspector.gui.app import Launcher
    from inspector.gui.main_window import MainWindow
    from inspector.line.messages import parse_mqtt_url
    from inspector.storage.recipes import make_recipe, save_recipe
    from inspector.storage.settings import load_settings
    from inspector.workers.station import Station
    from inspector.workers.store_holder import StoreHolder

    frames = tmp_path / "frames"
    write_frames(frames, 200, seed=31)
    part_a = make_recipe("part-a", str(line_model), threshold=1e9, source=f"folder:{frames}")  # all OK
    save_recipe(part_a)
    save_recipe(make_recipe("part-b", str(line_model), threshold=1e-6, maps="off"))  # all NG: the switch shows
    db = tmp_path / "results.db"
    station = Station(StoreHolder(str(db)))
    station.recipe = part_a.name
    link = WindowPublisher(parse_mqtt_url(broker.url), "cell-w", f"{db}.mqtt-outbox")
    link.attach(station)
    window = MainWindow(station, load_settings()[0], save_settings=None)
    qtbot.addWidget(window)
    launcher = Launcher(window, part_a.source, autostart=False, quit_after=None, recipe=part_a)
    link.attach_window(window, launcher)
    window.show()
    station.load_model(part_a.model)
    yield window, link, db
    window.close()  # stops the workers (idempotent)
    link.close(drain_s=5)


def test_mqtt_commands_drive_the_window_on_the_gui_thread(station_window, qtbot, subscriber, monkeypatch):
    from inspector.storage.results_db import ResultStore

    window, link, db = station_window
    station = window.station
    threads = []
    original_step = station.step

    def step():
        threads.append(threading.current_thread())
        original_step()

    monkeypatch.setattr(station, "step", step)
    command = "line/cell-w/command"

    def status():
        statuses = subscriber.statuses()
        return statuses[-1] if statuses else {}

    def publish(payload: str) -> None:
        subscriber.client.publish(command, payload, qos=1)

    qtbot.waitUntil(lambda: status().get("state") == "paused" and bool(status().get("model_hash")), timeout=90_000)
    publish("trigger")
    qtbot.waitUntil(lambda: len(subscriber.decisions()) == 1, timeout=30_000)
    publish('{"command": "trigger"}')
    publish("trigger")  # while the first is in hand: it waits for it
    qtbot.waitUntil(lambda: len(subscriber.decisions()) == 3, timeout=30_000)
    qtbot.wait(700)
    assert len(subscriber.decisions()) == 3  # paused again after each trigger
    assert [m["verdict"] for m in subscriber.decisions()] == ["OK"] * 3

    publish('{"command": "recipe", "name": "no-such-recipe"}')  # refused on paho's thread: nothing changes
    publish('{"command": "recipe", "name": "part-b"}')
    qtbot.waitUntil(lambda: status().get("recipe") == "part-b", timeout=60_000)
    assert station.threshold == pytest.approx(1e-6) and station.recipe == "part-b"
    assert window.operator.mode_combo.currentData() == "off"
    publish("trigger")
    qtbot.waitUntil(lambda: len(subscriber.decisions()) == 4, timeout=30_000)
    assert subscriber.decisions()[-1]["verdict"] == "NG" and subscriber.decisions()[-1]["recipe"] == "part-b"

    publish('{"command": "start"}')
    qtbot.waitUntil(lambda: len(subscriber.decisions()) >= 10, timeout=60_000)
    assert window.run_action.text() == "Pause"  # the window shows the free run the line started
    publish("stop")
    qtbot.waitUntil(lambda: status().get("state") == "paused", timeout=30_000)
    qtbot.wait(300)
    stopped_at = len(subscriber.decisions())
    qtbot.wait(700)
    assert len(subscriber.decisions()) == stopped_at < 200  # stopped, not run to the end of the folder

    window.close()
    assert link.close(drain_s=10) == 0
    with ResultStore.open_read_only(db) as store:
        rows = store.query(limit=None)[::-1]
        audit = [e for e in store.query_audit() if e["action"] == "recipe"][::-1]
    assert unique_in_order(subscriber.decisions()) == [row["uid"] for row in rows]  # once each, in order
    assert [row["recipe"] for row in rows] == ["part-a"] * 3 + ["part-b"] * (len(rows) - 3)
    assert [row["verdict"] for row in rows] == ["OK"] * 3 + ["NG"] * (len(rows) - 3)
    assert [(e["old_value"], e["new_value"]) for e in audit] == [(None, "part-a"), ("part-a", "part-b")]
    assert "line command" in audit[1]["detail"] and audit[1]["new_model_hash"] == rows[-1]["model_hash"]
    assert len(threads) == 4 and all(t is threading.main_thread() for t in threads)  # the triggers, on the GUI
    assert subscriber.statuses()[-1]["state"] == "stopped"
