"""``inspector score --recipe NAME --mqtt URL`` against a real Mosquitto: every decision in the database reaches
the broker once, in order, with the recipe; a broker that is down costs a bounded wait and the decisions wait in
the outbox, delivered first by the next run; argument errors are exit 2 before any model is loaded."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.line.line_support import ROOT, db_rows, unique_in_order, wait_for, write_frames


def _score(args: list[str], env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inspector", "score", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def recipes(tmp_path, line_model, serve_env, monkeypatch):
    from inspector.storage.recipes import make_recipe, save_recipe

    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", serve_env["INSPECTOR_CONFIG_DIR"])  # the subprocess's recipes
    save_recipe(make_recipe("part-a", str(line_model), threshold=1e-6))  # every file NG: the override shows


def test_score_recipe_mqtt_every_row_once_in_order_with_the_recipe(tmp_path, recipes, broker, subscriber,
                                                                   serve_env):
    write_frames(tmp_path / "frames", 6, seed=21)
    (tmp_path / "frames" / "frame_0002b.png").write_bytes(b"not a png")  # an ERROR decision, published too
    db = tmp_path / "results.db"
    done = _score(["--recipe", "part-a", str(tmp_path / "frames"), "--db", str(db), "--mqtt", broker.url,
                   "--station", "cell-s", "--format", "jsonl", "--quiet"], serve_env)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = db_rows(db)
    assert len(rows) == 7 and [row["recipe"] for row in rows] == ["part-a"] * 7
    assert [row["verdict"] for row in rows].count("ERROR") == 1 and [r["verdict"] for r in rows].count("NG") == 6
    assert "7 decision(s) published to mqtt://127.0.0.1" in done.stderr and "none wait" in done.stderr
    wait_for(lambda: len(unique_in_order(subscriber.decisions())) >= 7, 15, what="seven decisions")
    messages = subscriber.decisions()
    assert unique_in_order(messages) == [row["uid"] for row in rows]
    by_uid = {m["uid"]: m for m in messages}
    for row in rows:
        message = by_uid[row["uid"]]
        assert message["recipe"] == "part-a" and message["station"] == "cell-s" and message["source"] == "score"
        assert message["verdict"] == row["verdict"] and message["path"] == row["path"]
        assert message["row_id"] == row["id"] and message["model_hash"] == row["model_hash"]
        if row["verdict"] != "ERROR":
            assert message["threshold"] == pytest.approx(1e-6) and message["raw_score"] == pytest.approx(
                row["raw_score"])
    assert {t for t, m, _ in subscriber.messages} == {"line/cell-s/decision"}  # a batch job has no status
    assert not list((tmp_path / "results.db.mqtt-outbox").glob("*.jsonl"))


def test_score_with_the_broker_down_finishes_and_the_next_run_delivers_first(tmp_path, line_model, broker,
                                                                             subscriber, serve_env):
    write_frames(tmp_path / "first", 4, seed=22)
    write_frames(tmp_path / "second", 3, seed=23)
    db = tmp_path / "results.db"
    common = ["--db", str(db), "--mqtt", broker.url, "--station", "cell-d", "--quiet"]
    broker.stop()
    started = time.monotonic()
    done = _score([str(line_model), str(tmp_path / "first"), *common, "--drain", "1"], serve_env)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 wait in the outbox" in done.stderr and "results.db.mqtt-outbox" in done.stderr, done.stderr
    assert took < 120 and len(db_rows(db)) == 4
    broker.start()
    done = _score([str(line_model), str(tmp_path / "first"), str(tmp_path / "second"), *common], serve_env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 decision(s) of an earlier run wait in the outbox" in done.stderr
    assert "skipped 4 file(s) already recorded" in done.stderr and "none wait" in done.stderr
    rows = db_rows(db)
    assert len(rows) == 7
    wait_for(lambda: len(unique_in_order(subscriber.decisions())) >= 7, 15, what="seven decisions")
    assert unique_in_order(subscriber.decisions()) == [row["uid"] for row in rows]  # the outbox first


def test_score_argument_errors_exit_2_before_the_model_is_loaded(tmp_path, serve_env, monkeypatch):
    from inspector.line.outbox import Outbox

    write_frames(tmp_path / "frames", 1, seed=24)
    missing = str(tmp_path / "no-such-model.safetensors")
    done = _score(["--recipe", "nothing-here", str(tmp_path / "frames")], serve_env)
    assert done.returncode == 2 and "no recipe 'nothing-here'" in done.stderr, done.stderr
    done = _score([missing, str(tmp_path / "frames"), "--mqtt", "http://127.0.0.1/line"], serve_env)
    assert done.returncode == 2 and "expected mqtt://host" in done.stderr, done.stderr
    done = _score([missing, str(tmp_path / "frames"), "--mqtt", "mqtts://127.0.0.1/line?ca=/no/ca.pem"], serve_env)
    assert done.returncode == 2 and "cannot be read" in done.stderr, done.stderr
    done = _score([missing, str(tmp_path / "frames"), "--outbox", str(tmp_path / "box")], serve_env)
    assert done.returncode == 2 and "give --mqtt URL too" in done.stderr, done.stderr
    done = _score([missing], serve_env)
    assert done.returncode == 2 and "give the image files or folders" in done.stderr, done.stderr
    held = Outbox(tmp_path / "box")  # another process's outbox
    try:
        done = _score([missing, str(tmp_path / "frames"), "--mqtt", "mqtt://127.0.0.1:1/line", "--outbox",
                       str(tmp_path / "box")], serve_env)
        assert done.returncode == 2 and "in use by another process" in done.stderr, done.stderr
    finally:
        held.close()
