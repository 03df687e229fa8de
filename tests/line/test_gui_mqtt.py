"""MQTT from the window against a real Mosquitto broker: ``gui --quit-after N --mqtt URL`` delivers
the N decisions with their database uids, in order, with the recipe; the settings keys do the same;
a broker that is down costs a bounded wait at close and the outbox goes first at the next start."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.line.line_support import ROOT, db_rows, unique_in_order, wait_for, write_frames


def _gui(args: list[str], env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run ``inspector gui ARGS`` offscreen."""
    return subprocess.run([sys.executable, "-m", "inspector", "-v", "gui", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_gui_quit_after_publishes_every_decision_with_its_uid_and_recipe(tmp_path, line_model, broker, subscriber,
                                                                          serve_env, monkeypatch):
    from inspector.storage.recipes import make_recipe, save_recipe

    write_frames(tmp_path / "frames", 8, seed=3, ng_every=3)
    env = dict(serve_env)
    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", env["INSPECTOR_CONFIG_DIR"])  # the subprocess's recipes
    save_recipe(make_recipe("part-a", str(line_model), source=f"folder:{tmp_path / 'frames'}"))
    db = tmp_path / "results.db"
    done = _gui(["--recipe", "part-a", "--db", str(db), "--quit-after", "6", "--mqtt", broker.url,
                 "--station", "cell-g"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = db_rows(db)
    assert len(rows) == 6 and all(row["recipe"] == "part-a" for row in rows)
    # The window drained before it exited: everything is already at the broker.
    wait_for(lambda: len(unique_in_order(subscriber.decisions())) >= 6, 10, what="six decisions")
    messages = subscriber.decisions()
    assert unique_in_order(messages) == [row["uid"] for row in rows]  # once each, in database order
    by_uid = {m["uid"]: m for m in messages}
    for row in rows:
        message = by_uid[row["uid"]]
        assert message["station"] == "cell-g" and message["recipe"] == "part-a"
        assert message["verdict"] == row["verdict"] and message["path"] == row["path"]
        assert message["row_id"] == row["id"] and message["model_hash"] == row["model_hash"]
    assert all(topic == "line/cell-g/decision" for topic, m, _ in subscriber.messages if "verdict" in m)
    wait_for(lambda: subscriber.statuses() and subscriber.statuses()[-1]["state"] == "stopped", 10,
             what="the stopped status")
    assert "6 acknowledged, 0 left in the outbox" in done.stderr, done.stderr[-3000:]


def test_settings_broker_down_bounded_close_then_the_outbox_goes_first(tmp_path, line_model, broker, subscriber,
                                                                      serve_env):
    env = dict(serve_env)
    config = tmp_path / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "settings.json").write_text(json.dumps({"version": 2, "mqtt_url": broker.url,
                                                      "station_name": "cell-s"}))
    broker.stop()  # the line's broker is down while the window inspects
    write_frames(tmp_path / "first", 3, seed=4)
    write_frames(tmp_path / "second", 2, seed=5)
    db = tmp_path / "results.db"
    started = time.monotonic()
    done = _gui(["--model", str(line_model), "--source", f"folder:{tmp_path / 'first'}", "--db", str(db),
                 "--quit-after", "3"], env)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert "3 left in the outbox" in done.stderr, done.stderr[-3000:]
    assert took < 90, f"closing waited {took:.0f} s for an absent broker"
    broker.start()
    done = _gui(["--model", str(line_model), "--source", f"folder:{tmp_path / 'second'}", "--db", str(db),
                 "--quit-after", "2"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = db_rows(db)
    assert len(rows) == 5
    wait_for(lambda: len(unique_in_order(subscriber.decisions())) >= 5, 15, what="five decisions")
    assert unique_in_order(subscriber.decisions()) == [row["uid"] for row in rows]
    assert {m["station"] for m in subscriber.decisions()} == {"cell-s"}
    settings = json.loads((config / "settings.json").read_text())
    assert settings["mqtt_url"] == broker.url and settings["station_name"] == "cell-s"  # kept by the window


def test_serve_under_a_recipe_stores_it_in_every_row_and_message(tmp_path, line_model, broker, subscriber, serve_env,
                                                                  monkeypatch):
    from inspector.storage.recipes import make_recipe, save_recipe
    from tests.line.line_support import finish, serve

    write_frames(tmp_path / "frames", 4, seed=6)
    (tmp_path / "frames" / "frame_0002b.png").write_bytes(b"not a png")  # an ERROR decision carries it too
    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", serve_env["INSPECTOR_CONFIG_DIR"])
    save_recipe(make_recipe("part-a", str(line_model), source=f"folder:{tmp_path / 'frames'}"))
    db = tmp_path / "results.db"
    code, err = finish(serve(["--recipe", "part-a", "--db", str(db), "--mqtt", broker.url, "--station", "cell-1",
                              "--quit-after", "4"], serve_env))
    assert code == 0, err[-3000:]
    rows = db_rows(db)
    assert len(rows) == 5 and [row["verdict"] for row in rows].count("ERROR") == 1
    assert [row["recipe"] for row in rows] == ["part-a"] * 5
    wait_for(lambda: len(unique_in_order(subscriber.decisions())) >= 5, 15, what="five decisions")
    assert {m["uid"]: m["recipe"] for m in subscriber.decisions()} == {row["uid"]: "part-a" for row in rows}
