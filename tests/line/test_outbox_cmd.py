"""``inspector outbox show|flush``: what waits is counted without touching the outbox; a flush delivers it in
order to a real Mosquitto, each message to its own topic, and exits 2 (keeping everything) while the broker is
down."""

from __future__ import annotations

import json

from inspector.cli.main import main
from inspector.line.outbox import Outbox, OutboxEntry
from tests.line.line_support import wait_for


def _fill(folder, count: int) -> list[str]:
    box = Outbox(folder)
    uids = []
    for i in range(count):
        uid = f"uid-{i}"
        station = "cell-1" if i % 2 else "cell-2"
        box.append(OutboxEntry(uid, f"line/{station}/decision", json.dumps({"uid": uid, "n": i})))
        uids.append(uid)
    box.close()
    return uids


def test_show_and_flush(tmp_path, broker, subscriber, capsys, monkeypatch):
    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    db = tmp_path / "results.db"
    uids = _fill(tmp_path / "results.db.mqtt-outbox", 5)
    assert main(["outbox", "show", "--db", str(db)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["pending"] == 5 and shown["topics"] == {"line/cell-2/decision": 3, "line/cell-1/decision": 2}
    assert shown["first_uid"] == "uid-0" and shown["last_uid"] == "uid-4"

    broker.stop()
    assert main(["outbox", "flush", "--db", str(db), "--mqtt", broker.url, "--timeout", "1"]) == 2
    assert "0 of 5 decision(s) delivered" in capsys.readouterr().err
    broker.start()
    assert main(["outbox", "flush", "--db", str(db), "--mqtt", broker.url, "--timeout", "20"]) == 0
    assert "5 of 5 decision(s) delivered to mqtt://127.0.0.1" in capsys.readouterr().err
    wait_for(lambda: len(subscriber.decisions()) >= 5, 15, what="the flushed decisions")
    assert [m["uid"] for m in subscriber.decisions()] == uids
    topics = [t for t, m, _ in subscriber.messages if m.get("uid")]
    assert topics == [f"line/{'cell-1' if i % 2 else 'cell-2'}/decision" for i in range(5)]

    assert main(["outbox", "show", "--outbox", str(tmp_path / "results.db.mqtt-outbox")]) == 0
    assert json.loads(capsys.readouterr().out)["pending"] == 0
    assert main(["outbox", "flush", "--db", str(db), "--mqtt", broker.url]) == 0
    assert "nothing waits" in capsys.readouterr().err


def test_flush_refuses_an_outbox_in_use_and_a_bad_url(tmp_path, capsys):
    _fill(tmp_path / "box", 1)
    held = Outbox(tmp_path / "box")
    try:
        assert main(["outbox", "show", "--outbox", str(tmp_path / "box")]) == 0  # looking is fine
        assert json.loads(capsys.readouterr().out)["pending"] == 1
        assert main(["outbox", "flush", "--outbox", str(tmp_path / "box"), "--mqtt", "mqtt://127.0.0.1:1/x"]) == 2
        assert "in use by another process" in capsys.readouterr().err
    finally:
        held.close()
    assert main(["outbox", "flush", "--outbox", str(tmp_path / "box"), "--mqtt", "ftp://127.0.0.1/x"]) == 2
    assert "expected mqtt://host" in capsys.readouterr().err
