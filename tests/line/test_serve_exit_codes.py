"""``inspector serve`` exit codes are the window's: 2 when the run cannot go on, 4 when decisions could only be
journalled (they are still published: MQTT does not depend on the database)."""

from __future__ import annotations

from tests.line.line_support import finish, serve, wait_for, write_frames


def test_unusable_model_and_usage_errors_exit_2(tmp_path, serve_env):
    write_frames(tmp_path / "frames", 2)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    code, err = finish(serve(["--model", str(bad), "--source", f"folder:{tmp_path / 'frames'}", "--db",
                              str(tmp_path / "r.db"), "--quit-after", "2"], serve_env), timeout=60)
    assert code == 2 and "cannot load model" in err
    code, err = finish(serve(["--model", str(bad), "--source", "folder:x", "--opcua", "opc.tcp://0.0.0.0:4840/x"],
                             serve_env), timeout=60)
    assert code == 2 and "--opcua-allow-remote" in err
    code, err = finish(serve(["--recipe", "nothing-here", "--source", "folder:x"], serve_env), timeout=60)
    assert code == 2 and "no recipe 'nothing-here'" in err


def test_database_unwritable_exits_4_and_still_publishes(tmp_path, line_model, broker, subscriber, serve_env):
    write_frames(tmp_path / "frames", 3, seed=7)
    db = tmp_path / "results.db"
    db.mkdir()  # a folder where the database file should be: every write fails, decisions go to the journal
    code, err = finish(serve(["--model", str(line_model), "--source", f"folder:{tmp_path / 'frames'}", "--db",
                              str(db), "--mqtt", broker.url, "--station", "cell-5", "--quit-after", "3"], serve_env))
    assert code == 4, err[-3000:]
    journal = (tmp_path / "results.db.journal" / "decisions.jsonl").read_text().splitlines()
    assert len(journal) == 3
    wait_for(lambda: len(subscriber.decisions()) >= 3, 30, what="the journalled decisions over MQTT")
    import json

    assert [m["uid"] for m in subscriber.decisions()] == [json.loads(line)["uid"] for line in journal]
