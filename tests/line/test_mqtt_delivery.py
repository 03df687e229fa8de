"""Every decision in the database reaches a real Mosquitto broker exactly once (by uid) and in order:
across a broker restart in the middle of a run, and across a station restart with an undelivered outbox."""

from __future__ import annotations

import signal

import pytest

from tests.line.line_support import db_rows, finish, serve, unique_in_order, wait_for, write_frames


def test_broker_restart_mid_run_loses_nothing(tmp_path, line_model, broker, subscriber, serve_env):
    frames = write_frames(tmp_path / "frames", 120, seed=1, ng_every=10)
    (tmp_path / "frames" / "frame_0050b.png").write_bytes(b"not a png")  # an ERROR decision in the middle
    db = tmp_path / "results.db"
    process = serve(["--model", str(line_model), "--source", f"folder:{tmp_path / 'frames'}", "--db", str(db),
                     "--mqtt", broker.url, "--station", "cell-1", "--quit-after", str(len(frames)),
                     "--drain", "30"], serve_env)
    wait_for(lambda: len(subscriber.decisions()) >= 10 or process.poll() is not None, 60, what="first decisions")
    broker.stop(signal.SIGTERM)  # the line's broker restarts while the station inspects
    received_before = len(subscriber.decisions())
    broker.start()
    code, err = finish(process)
    assert code == 0, err[-3000:]
    rows = db_rows(db)
    assert len(rows) == len(frames) + 1
    assert [row["verdict"] for row in rows].count("ERROR") == 1
    wait_for(lambda: len(unique_in_order(subscriber.decisions())) >= len(rows), 30, what="every decision")
    messages = subscriber.decisions()
    assert unique_in_order(messages) == [row["uid"] for row in rows]  # exactly once each, in database order
    assert received_before < len(rows), "the broker was restarted after the run, not in it"
    by_uid = {m["uid"]: m for m in messages}
    for row in rows:
        message = by_uid[row["uid"]]
        assert message["verdict"] == row["verdict"] and message["path"] == row["path"]
        assert message["model_hash"] == row["model_hash"] and message["frame_id"] == row["frame_id"]
        if row["verdict"] == "ERROR":
            assert message["error"] == row["error"] and message["raw_score"] is None
            continue
        assert message["raw_score"] == pytest.approx(row["raw_score"]) and message["score"] == pytest.approx(row["score"])
        assert message["threshold"] == pytest.approx(row["threshold"])
        assert message["image_path"] == row["image_path"]
        assert message["station"] == "cell-1" and message["source"] == row["source"]
    assert any(row["verdict"] == "NG" for row in rows)
    assert "mqtt: lost the connection" in err
    assert not list((tmp_path / "results.db.mqtt-outbox").glob("*.jsonl"))  # all acknowledged, outbox emptied


def test_station_restart_delivers_the_outbox(tmp_path, line_model, broker, subscriber, serve_env):
    write_frames(tmp_path / "frames", 10, seed=2)
    db = tmp_path / "results.db"
    args = ["--model", str(line_model), "--source", f"folder:{tmp_path / 'frames'}", "--db", str(db),
            "--mqtt", broker.url, "--station", "cell-2", "--quit-after", "5"]
    broker.stop()
    code, err = finish(serve([*args, "--drain", "0"], serve_env))
    assert code == 0, err[-3000:]
    assert "5 left in the outbox" in err
    assert subscriber.decisions() == []
    broker.start()
    code, err = finish(serve([*args, "--drain", "20"], serve_env))  # resumes the folder: the next 5 files
    assert code == 0, err[-3000:]
    rows = db_rows(db)
    assert len(rows) == 10
    assert "10 acknowledged, 0 left in the outbox" in err, err[-3000:]
    wait_for(lambda: len(unique_in_order(subscriber.decisions())) >= 10, 30, what=f"the outbox and the new run ({len(subscriber.messages)} messages: "
             f"{[(t, m.get('state')) for t, m, _ in subscriber.messages][:20]})")
    assert unique_in_order(subscriber.decisions()) == [row["uid"] for row in rows]
