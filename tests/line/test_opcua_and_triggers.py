"""A real asyncua client triggers inspections, reads the variables and switches recipes; MQTT commands
trigger frames; SIGTERM ends serve with exit 0 and every decision recorded and delivered once."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from inspector.storage.recipes import make_recipe, save_recipe
from tests.line.line_support import db_rows, finish, free_port, serve, wait_for, write_frames


def _unique(messages: list[dict]) -> list[str]:
    seen: list[str] = []
    for message in messages:
        if message["uid"] not in seen:
            seen.append(message["uid"])
    return seen


async def _opcua_session(endpoint: str, process) -> dict:
    """Connect (retrying while serve starts), trigger, switch the recipe, trigger again."""
    from asyncua import Client, ua

    client = None
    deadline = time.monotonic() + 90
    while client is None:
        assert process.poll() is None, "serve ended before its OPC UA server came up"
        assert time.monotonic() < deadline, "no OPC UA server"
        candidate = Client(endpoint, timeout=5)
        try:
            await candidate.connect()
            client = candidate
        except (OSError, asyncio.TimeoutError, ua.UaError):
            await asyncio.sleep(0.2)
    try:
        index = await client.get_namespace_index("urn:inspector")
        node = {name: client.get_node(f"ns={index};s=Inspector.{name}") for name in (
            "LastVerdict", "LastScore", "LastRawScore", "FrameId", "CountOK", "CountNG", "ModelHash", "Recipe",
            "SourceState", "RunState", "Threshold", "Drifting")}
        station = client.get_node(f"ns={index};s=Inspector")
        deadline = time.monotonic() + 60
        while not (await node["ModelHash"].read_value() and await node["RunState"].read_value() == "paused"):
            assert time.monotonic() < deadline, "the model never came in"
            await asyncio.sleep(0.1)
        seen = {"recipe_before": await node["Recipe"].read_value(), "answers": [], "after": [], "latency_s": []}
        for _ in range(2):
            started = time.perf_counter()
            verdict, score = await station.call_method(f"{index}:Trigger")
            seen["latency_s"].append(time.perf_counter() - started)
            seen["answers"].append((verdict, score))
            seen["after"].append({name: await n.read_value() for name, n in node.items()})
        seen["unknown"] = await station.call_method(f"{index}:SwitchRecipe", "no-such-recipe")
        assert await station.call_method(f"{index}:SwitchRecipe", "part-b") == ""
        deadline = time.monotonic() + 60
        while await node["Recipe"].read_value() != "part-b":
            assert time.monotonic() < deadline, "the recipe never switched"
            await asyncio.sleep(0.1)
        for _ in range(2):
            seen["answers"].append(tuple(await station.call_method(f"{index}:Trigger")))
            seen["after"].append({name: await n.read_value() for name, n in node.items()})
        return seen
    finally:
        await client.disconnect()


def test_opcua_trigger_variables_and_recipe_switch(tmp_path, line_model, broker, subscriber, serve_env,
                                                    monkeypatch):
    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", serve_env["INSPECTOR_CONFIG_DIR"])
    write_frames(tmp_path / "frames", 8, seed=3)
    save_recipe(make_recipe("part-a", str(line_model), threshold=1e9, source=f"folder:{tmp_path / 'frames'}"))
    save_recipe(make_recipe("part-b", str(line_model), threshold=1e-6))  # everything NG: the switch shows
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/inspector"
    db = tmp_path / "results.db"
    process = serve(["--recipe", "part-a", "--db", str(db), "--opcua", endpoint, "--trigger", "opcua",
                     "--mqtt", broker.url, "--station", "cell-3"], serve_env)
    try:
        seen = asyncio.run(_opcua_session(endpoint, process))
    except BaseException:
        process.kill()
        print(process.communicate()[1][-3000:])
        raise
    process.send_signal(signal.SIGINT)
    code, err = finish(process)
    assert code == 0, err[-3000:]
    rows = db_rows(db)
    assert len(rows) == 4  # one frame per trigger, not a free run
    assert [a[0] for a in seen["answers"]] == [row["verdict"] for row in rows] == ["OK", "OK", "NG", "NG"]
    for answer, after, row in zip(seen["answers"], seen["after"], rows):
        assert answer[1] == pytest.approx(row["score"])
        assert after["LastVerdict"] == row["verdict"] and after["FrameId"] == row["frame_id"]
        assert after["LastRawScore"] == pytest.approx(row["raw_score"]) and after["ModelHash"] == row["model_hash"]
    assert [(a["CountOK"], a["CountNG"]) for a in seen["after"]] == [(1, 0), (2, 0), (2, 1), (2, 2)]
    assert seen["recipe_before"] == "part-a" and seen["after"][-1]["Recipe"] == "part-b"
    assert [row["threshold"] for row in rows] == pytest.approx([1e9, 1e9, 1e-6, 1e-6])
    assert "no recipe 'no-such-recipe'" in seen["unknown"]
    assert max(seen["latency_s"]) < 5.0
    from inspector.storage.results_db import ResultStore

    with ResultStore(db) as store:
        audit = [entry for entry in store.query_audit() if entry["action"] == "recipe"]
    assert len(audit) == 1 and "part-a" in str(audit[0]["old_value"]) and "part-b" in str(audit[0]["new_value"])
    wait_for(lambda: len(_unique(subscriber.decisions())) >= 4, 30, what="the decisions over MQTT")
    messages = {m["uid"]: m for m in subscriber.decisions()}
    assert [messages[row["uid"]]["recipe"] for row in rows] == ["part-a", "part-a", "part-b", "part-b"]


def test_mqtt_commands_and_sigterm_record_everything(tmp_path, line_model, broker, subscriber, serve_env):
    write_frames(tmp_path / "frames", 400, seed=4)
    db = tmp_path / "results.db"
    process = serve(["--model", str(line_model), "--source", f"folder:{tmp_path / 'frames'}", "--db", str(db),
                     "--mqtt", broker.url, "--station", "cell-4", "--trigger", "mqtt"], serve_env)
    try:
        wait_for(lambda: any(s["state"] == "paused" and s.get("model_hash") for s in subscriber.statuses()), 90,
                 what="a paused station with its model")
        command = "line/cell-4/command"
        subscriber.client.publish(command, "trigger", qos=1)
        subscriber.client.publish(command, '{"command": "trigger"}', qos=1)
        wait_for(lambda: len(subscriber.decisions()) >= 2, 30, what="two triggered decisions")
        time.sleep(0.5)
        assert len(subscriber.decisions()) == 2  # paused again after each trigger
        subscriber.client.publish(command, '{"command": "start"}', qos=1)
        wait_for(lambda: len(subscriber.decisions()) >= 20, 60, what="free-running decisions")
        process.send_signal(signal.SIGTERM)
        code, err = finish(process, timeout=60)
    except BaseException:
        process.kill()
        print(process.communicate()[1][-3000:])
        raise
    assert code == 0, err[-3000:]
    assert "SIGTERM received" in err
    rows = db_rows(db)
    assert 20 <= len(rows) < 400
    wait_for(lambda: len(_unique(subscriber.decisions())) >= len(rows), 30, what="every recorded decision")
    assert _unique(subscriber.decisions()) == [row["uid"] for row in rows]
    assert subscriber.statuses()[-1]["state"] == "stopped"
    assert all(isinstance(s["drifting"], bool) and isinstance(s["recording"], bool)
               for s in subscriber.statuses() if s["state"] != "offline")
    assert not list((tmp_path / "results.db.mqtt-outbox").glob("*.jsonl"))


def test_hotfolder_trigger_one_decision_per_file(tmp_path, line_model, broker, subscriber, serve_env):
    import os

    hot = tmp_path / "hot"
    hot.mkdir()
    staged = write_frames(tmp_path / "staged", 5, seed=9)
    db = tmp_path / "results.db"
    process = serve(["--model", str(line_model), "--source", f"hotfolder:{hot}?poll=0.05", "--db", str(db),
                     "--mqtt", broker.url, "--station", "cell-6", "--trigger", "hotfolder", "--quit-after", "5"],
                    serve_env)
    try:
        wait_for(lambda: any(s["state"] == "running" and s.get("model_hash") for s in subscriber.statuses()), 90,
                 what="a running station")
        latencies = []
        for i, path in enumerate(staged):
            dropped = time.monotonic()
            os.replace(path, hot / path.name)  # the trigger: a file appears
            wait_for(lambda: len(subscriber.decisions()) > i, 10, step=0.005, what=f"the decision on file {i}")
            latencies.append(time.monotonic() - dropped)
        code, err = finish(process)
    except BaseException:
        process.kill()
        print(process.communicate()[1][-3000:])
        raise
    assert code == 0, err[-3000:]
    assert [m["path"] for m in subscriber.decisions()] == [str(hot / p.name) for p in staged]
    assert [row["uid"] for row in db_rows(db)] == [m["uid"] for m in subscriber.decisions()]
    print(f"file appeared -> decision at the subscriber: {[round(x * 1000) for x in latencies]} ms")
    assert max(latencies) < 3.0
