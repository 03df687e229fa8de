"""The outbox on disk (torn lines, acknowledgements, compaction, reopening) and recipes through the CLI."""

from __future__ import annotations

import json

import pytest

from inspector.cli import recipe_cmd
from inspector.line import outbox as outbox_module
from inspector.line.messages import parse_mqtt_url
from inspector.line.opcua_server import check_endpoint
from inspector.line.outbox import Outbox, OutboxEntry
from inspector.storage.recipes import RecipeError, load_recipe


def _entry(i: int) -> OutboxEntry:
    return OutboxEntry(f"uid-{i}", "line/s/decision", json.dumps({"n": i}))


def test_outbox_keeps_order_and_survives_reopening(tmp_path):
    box = Outbox(tmp_path / "box")
    for i in range(5):
        box.append(_entry(i))
    box.sync()
    box.ack("uid-0")
    box.ack("uid-2")  # out of order: only that one goes
    box.close()
    with open(tmp_path / "box" / "outbox.jsonl", "ab") as handle:
        handle.write(b'{"v":1,"uid":"torn","top')  # killed while writing
    again = Outbox(tmp_path / "box")
    assert [e.uid for e in again.pending()] == ["uid-1", "uid-3", "uid-4"]
    again.append(_entry(5))  # lands on its own line after the torn one
    again.close()
    assert [e.uid for e in Outbox(tmp_path / "box").pending()] == ["uid-1", "uid-3", "uid-4", "uid-5"]


def test_outbox_is_removed_when_everything_is_acknowledged_and_compacts(tmp_path, monkeypatch):
    monkeypatch.setattr(outbox_module, "COMPACT_AFTER", 3)
    box = Outbox(tmp_path / "box")
    for i in range(6):
        box.append(_entry(i))
    for i in range(3):
        box.ack(f"uid-{i}")
    lines = (tmp_path / "box" / "outbox.jsonl").read_bytes().splitlines()
    assert len(lines) == 3 and not (tmp_path / "box" / "acked.txt").exists()  # rewritten with the pending ones
    for i in range(3, 6):
        box.ack(f"uid-{i}")
    assert len(box) == 0 and (tmp_path / "box" / "outbox.jsonl").read_bytes() == b""  # truncated in place
    box.append(_entry(9))
    box.close()
    assert [e.uid for e in Outbox(tmp_path / "box").pending()] == ["uid-9"]
    empty = Outbox(tmp_path / "box")
    empty.ack("uid-9")
    empty.close()
    assert not (tmp_path / "box" / "outbox.jsonl").exists()  # nothing pending at close: no files left


def test_addresses_are_checked():
    address = parse_mqtt_url("mqtt://127.0.0.1:18830/plant/line4")
    assert (address.host, address.port, address.prefix) == ("127.0.0.1", 18830, "plant/line4")
    assert address.topic("cell-1", "decision") == "plant/line4/cell-1/decision"
    assert parse_mqtt_url("mqtt://localhost").prefix == "inspector"
    for bad in ("http://host", "mqtt:///x", "mqtt://host/a/#"):
        with pytest.raises(ValueError):
            parse_mqtt_url(bad)
    assert check_endpoint("opc.tcp://127.0.0.1:4840/inspector")
    with pytest.raises(ValueError, match="--opcua-allow-remote"):
        check_endpoint("opc.tcp://0.0.0.0:4840/inspector")
    assert check_endpoint("opc.tcp://0.0.0.0:4840/inspector", allow_remote=True)


def test_recipe_add_list_show_remove(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", str(tmp_path / "config"))
    model = tmp_path / "part.safetensors"
    model.write_bytes(b"not read here")
    monkeypatch.chdir(tmp_path)
    assert recipe_cmd.main(["add", "part-a", "--model", "part.safetensors", "--threshold", "2.5",
                            "--source", "folder:/x", "--maps", "fast"]) == 0
    assert recipe_cmd.main(["add", "part-b", "--model", str(model)]) == 0
    recipe = load_recipe("part-a")
    assert recipe.model == str(model) and recipe.threshold == 2.5 and recipe.source == "folder:/x"
    assert json.loads((tmp_path / "config" / "recipes" / "part-a.json").read_text())["version"] == 1
    capsys.readouterr()
    assert recipe_cmd.main(["list"]) == 0
    assert [json.loads(line)["name"] for line in capsys.readouterr().out.splitlines()] == ["part-a", "part-b"]
    assert recipe_cmd.main(["show", "part-b"]) == 0
    assert json.loads(capsys.readouterr().out)["threshold"] is None
    assert recipe_cmd.main(["remove", "part-a"]) == 0
    with pytest.raises(RecipeError, match="known: part-b"):
        load_recipe("part-a")
    assert recipe_cmd.main(["remove", "part-a"]) == 2
    assert recipe_cmd.main(["add", "../evil", "--model", str(model)]) == 2
    assert recipe_cmd.main(["add", "c", "--model", str(tmp_path / "missing.safetensors")]) == 2
    assert recipe_cmd.main(["add", "c", "--model", str(model), "--threshold", "-1"]) == 2


def test_one_process_per_outbox(tmp_path):
    """A second opener (say, a window and serve on the same database) is refused at once, not interleaved."""
    import subprocess
    import sys

    box = Outbox(tmp_path / "box")
    box.append(_entry(1))
    probe = ("import sys\nfrom inspector.line.outbox import Outbox\n"
             "try:\n    Outbox(sys.argv[1])\nexcept OSError as exc:\n    print(exc)\n    sys.exit(3)\n")
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "box")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 3 and "in use by another process" in done.stdout
    with pytest.raises(OSError, match="in use"):
        Outbox(tmp_path / "box")  # another open outbox in this process too
    box.close()
    again = Outbox(tmp_path / "box")  # released on close
    assert [e.uid for e in again.pending()] == ["uid-1"]
    again.close()
