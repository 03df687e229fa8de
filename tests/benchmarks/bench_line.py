"""What the line costs: MQTT publishing per decision at 30 frames/s, and trigger-to-verdict over OPC UA.

- **publishing**: a real Mosquitto broker on a free loopback port, the real
  :class:`~inspector.line.mqtt_publisher.MqttPublisher` and outbox, and a thread that
  plays the inspection thread at 30 frames/s: each "decision" costs what the result
  listener costs it (build the message, append it to the outbox, wake the publisher).
  Printed: that cost per decision (median, p99, max), and broker-to-subscriber arrival.
  Target: under 1 ms per decision.
- **trigger to verdict**: ``inspector serve --trigger opcua`` in a subprocess with a
  real model on a folder of real crops; an asyncua client calls ``Trigger`` and times
  the answer (the verdict is written to LastVerdict before the answer goes out). The
  overhead is the round trip minus the frame's recorded detection time. Target:
  overhead under 50 ms (the answer within 50 ms plus one detection).

    python tests/benchmarks/bench_line.py [--model MODEL] [--decisions 300] [--triggers 40]

Without --model a small Gaussian model (Lite0, 64 px) is fitted on crops of
tests/data/chelsea.png. Exits 1 when a target is missed, 2 without mosquitto.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.line.line_support import MOSQUITTO, Broker, Subscriber, db_rows, free_port, write_frames  # noqa: E402


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_publishing(folder: Path, decisions: int, rate: float = 30.0) -> dict:
    """Cost of a decision to the inspection thread, and arrival at a subscriber."""
    from inspector.core.records import Frame, Heatmap, InspectionResult, Region
    from inspector.line.messages import decision_message, parse_mqtt_url
    from inspector.line.mqtt_publisher import MqttPublisher

    broker = Broker(folder / "broker")
    broker.start()
    subscriber = Subscriber(broker.port)
    publisher = MqttPublisher(parse_mqtt_url(broker.url), "bench", str(folder / "outbox"))
    publisher.start()
    image = np.zeros((96, 96, 3), np.uint8)
    heatmap = Heatmap(np.zeros((8, 8), np.float32), "fast", (Region(1, 2, 30, 40, 900, 1.7),))
    costs, sent = [], {}
    try:
        deadline = time.monotonic() + 10
        while not publisher.connected and time.monotonic() < deadline:
            time.sleep(0.01)

        def inspection_thread() -> None:
            start = time.perf_counter()
            for i in range(decisions):
                result = InspectionResult(Frame(image, "folder:/bench", i, f"/bench/{i}.png"), 150.0 + i, 0.8, 187.5,
                                          i % 10 == 9, "f" * 64, 12.0, heatmap if i % 10 == 9 else None)
                t0 = time.perf_counter()
                message = decision_message(result, f"uid-{i:06d}", None, station="bench", recipe="part-a")
                publisher.submit(message)
                costs.append(time.perf_counter() - t0)
                sent[message["uid"]] = time.time()
                time.sleep(max(0.0, start + (i + 1) / rate - time.perf_counter()))

        thread = threading.Thread(target=inspection_thread)
        thread.start()
        thread.join()
        deadline = time.monotonic() + 30
        while len({m["uid"] for m in subscriber.decisions()}) < decisions and time.monotonic() < deadline:
            time.sleep(0.05)
        left = publisher.stop(drain_s=5)
        arrived = {m["uid"] for m in subscriber.decisions()}
    finally:
        subscriber.close()
        broker.stop()
    costs_ms = [c * 1000 for c in costs]
    return {"decisions": decisions, "rate": rate, "median_ms": statistics.median(costs_ms),
            "p99_ms": _percentile(costs_ms, 99), "max_ms": max(costs_ms), "arrived": len(arrived),
            "left_in_outbox": left, "published": publisher.published, "acknowledged": publisher.acknowledged}


async def _trigger_many(endpoint: str, count: int, process: subprocess.Popen) -> list[float]:
    from asyncua import Client, ua

    client, deadline = None, time.monotonic() + 120
    while client is None:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("serve did not bring its OPC UA server up")
        candidate = Client(endpoint, timeout=5)
        try:
            await candidate.connect()
            client = candidate
        except (OSError, asyncio.TimeoutError, ua.UaError):
            await asyncio.sleep(0.2)
    try:
        index = await client.get_namespace_index("urn:inspector")
        state = client.get_node(f"ns={index};s=Inspector.RunState")
        model = client.get_node(f"ns={index};s=Inspector.ModelHash")
        while not (await model.read_value() and await state.read_value() == "paused"):
            await asyncio.sleep(0.05)
        station = client.get_node(f"ns={index};s=Inspector")
        verdict = client.get_node(f"ns={index};s=Inspector.LastVerdict")
        times = []
        for _ in range(count):
            started = time.perf_counter()
            answer = await station.call_method(f"{index}:Trigger")
            times.append(time.perf_counter() - started)
            assert await verdict.read_value() == answer[0]
            await asyncio.sleep(0.05)
        return times
    finally:
        await client.disconnect()


def bench_trigger(folder: Path, model: Path, triggers: int) -> dict:
    """Trigger-to-answer over OPC UA against ``inspector serve``, minus the recorded detection time."""
    write_frames(folder / "frames", triggers, seed=11)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/inspector"
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
               INSPECTOR_CONFIG_DIR=str(folder / "config"), INSPECTOR_DATA_DIR=str(folder / "data"))
    db = folder / "results.db"
    process = subprocess.Popen([sys.executable, "-m", "inspector.cli.serve_cmd", "--model", str(model), "--source",
                                f"folder:{folder / 'frames'}", "--db", str(db), "--opcua", endpoint, "--trigger",
                                "opcua", "--quit-after", str(triggers), "--maps", "off"],
                               cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        times = asyncio.run(_trigger_many(endpoint, triggers, process))
        _, err = process.communicate(timeout=60)
    except BaseException:
        process.kill()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"serve exited {process.returncode}: {err[-2000:]}")
    rows = db_rows(db)
    detection = [row["latency_ms"] for row in rows]
    round_trip = [t * 1000 for t in times]
    overhead = [r - d for r, d in zip(round_trip, detection)]
    return {"triggers": len(times), "round_trip_median_ms": statistics.median(round_trip),
            "round_trip_p95_ms": _percentile(round_trip, 95), "detection_median_ms": statistics.median(detection),
            "overhead_median_ms": statistics.median(overhead), "overhead_p95_ms": _percentile(overhead, 95),
            "overhead_max_ms": max(overhead)}


def _fit_model(folder: Path) -> Path:
    write_frames(folder / "refs", 20, seed=100)
    path = folder / "crops.safetensors"
    subprocess.run([sys.executable, "-m", "inspector", "fit", str(folder / "refs"), "-o", str(path), "--image-size",
                    "64", "--detector", "gaussian", "--quiet"], cwd=ROOT, check=True,
                   env=dict(os.environ, INSPECTOR_CONFIG_DIR=str(folder / "config")))
    return path


def main(argv: list[str] | None = None) -> int:
    """Run both measurements and print them; 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="model file (default: a small one fitted here)")
    parser.add_argument("--decisions", type=int, default=300)
    parser.add_argument("--triggers", type=int, default=40)
    args = parser.parse_args(argv)
    if MOSQUITTO is None:
        print("mosquitto is not installed (apt-get install mosquitto)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        publishing = bench_publishing(folder, args.decisions)
        print(f"publishing at {publishing['rate']:g} frames/s, {publishing['decisions']} decisions: "
              f"inspection-thread cost median {publishing['median_ms']:.3f} ms, p99 {publishing['p99_ms']:.3f} ms, "
              f"max {publishing['max_ms']:.3f} ms; {publishing['arrived']} arrived at the subscriber, "
              f"{publishing['acknowledged']} acknowledged, {publishing['left_in_outbox']} left in the outbox")
        model = args.model or _fit_model(folder)
        trigger = bench_trigger(folder, model, args.triggers)
        print(f"trigger to verdict over OPC UA, {trigger['triggers']} triggers: round trip median "
              f"{trigger['round_trip_median_ms']:.1f} ms (p95 {trigger['round_trip_p95_ms']:.1f}), detection median "
              f"{trigger['detection_median_ms']:.1f} ms, overhead median {trigger['overhead_median_ms']:.1f} ms, "
              f"p95 {trigger['overhead_p95_ms']:.1f} ms, max {trigger['overhead_max_ms']:.1f} ms")
    missed = []
    if publishing["p99_ms"] >= 1.0:
        missed.append(f"publishing p99 {publishing['p99_ms']:.3f} ms >= 1 ms")
    if publishing["arrived"] != publishing["decisions"]:
        missed.append("not every decision arrived")
    if trigger["overhead_p95_ms"] >= 50.0:
        missed.append(f"trigger overhead p95 {trigger['overhead_p95_ms']:.1f} ms >= 50 ms")
    for line in missed:
        print(f"target missed: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
