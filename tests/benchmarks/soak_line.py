"""Soak: ``inspector serve`` against a real Mosquitto for N minutes, the broker restarted once in the middle.

What runs (all on loopback, in a temporary folder):

- a Mosquitto broker on a free port (persistence on, as on a line), started by this script;
- a subscriber with a persistent session (QoS 1, ``clean_session=False``) that records every
  message and when it arrived;
- ``inspector serve --trigger hotfolder --source hotfolder:DIR --mqtt ...`` with a small
  model fitted here (``inspector fit`` on 20 good images, Gaussian, Lite0) unless ``--model``;
- a feeder that drops real images into the hot folder at ``--rate`` files per second (the
  machine may be shared: 5/s keeps the station's CPU use modest), starting once the station
  says it is running, so that every file is new to the folder;
- at half time the broker is stopped (SIGTERM, or SIGKILL with ``--kill``), kept down
  ``--down`` seconds and started again; the station keeps inspecting, decisions wait in its
  outbox;
- at the end the feeder stops, the station decides what is left in the folder, gets SIGTERM
  (it finishes the frame in hand, drains the outbox) and must exit 0.

Then it counts: files fed, decisions in the results database, messages received, duplicates
(at-least-once delivery may repeat a message; consumers drop them by ``uid``), missing (in the
database, never received), unknown (received, not in the database), order (first arrivals in
database order), the outbox left on disk, the station's CPU use, and the arrival delay
(message ``time`` to arrival at the subscriber; the outage shows in the maximum).

    python tests/benchmarks/soak_line.py [--minutes 10] [--rate 5] [--model MODEL] [--images DIR]
        [--kill] [--down 5] [--keep DIR]

Exits 0 when every decision arrived, none is unknown, the order holds, the outbox is empty and
serve exited 0; 1 otherwise; 2 without mosquitto or images.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.line.line_support import MOSQUITTO, Broker, db_rows  # noqa: E402

DEFAULT_REFS = Path("/work/data/suite/dsyn-brick/train/good")
DEFAULT_IMAGES = Path("/work/data/suite/dsyn-brick/test")
STATION = "soak-1"


class Recorder:
    """A paho subscriber with a persistent session that records (arrival time, topic, message)."""

    def __init__(self, port: int, prefix: str) -> None:
        import paho.mqtt.client as mqtt

        self.lock = threading.Lock()
        self.decisions: list[tuple[float, dict]] = []
        self.statuses: list[dict] = []
        self.connects = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="soak-subscriber", clean_session=False)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.topic = f"{prefix}/#"
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        if not self.subscribed.wait(15):
            raise SystemExit("the subscriber could not subscribe")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connects += 1
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client, userdata, message) -> None:
        now = time.time()
        try:
            payload = json.loads(message.payload)
        except ValueError:
            return
        with self.lock:
            if message.topic.endswith("/decision"):
                self.decisions.append((now, payload))
            elif message.topic.endswith("/status"):
                self.statuses.append(payload)

    def state(self) -> str:
        with self.lock:
            return self.statuses[-1].get("state", "") if self.statuses else ""

    def count(self) -> int:
        with self.lock:
            return len(self.decisions)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fit_model(folder: Path, refs: Path, env: dict) -> Path:
    images = sorted(p for p in refs.iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))[:20]
    if len(images) < 10:
        raise SystemExit(f"too few reference images in {refs}")
    target = folder / "refs"
    target.mkdir()
    for path in images:
        shutil.copy(path, target / path.name)
    model = folder / "soak.safetensors"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "inspector", "fit", str(target), "-o", str(model), "--detector", "gaussian",
                    "--backbone", "lite0", "--image-size", "128", "--quiet"], cwd=ROOT, env=env, check=True,
                   timeout=900)
    print(f"model fitted on {len(images)} images of {refs} in {time.monotonic() - started:.0f} s: {model}",
          flush=True)
    return model


def feed(hot: Path, images: list[Path], rate: float, stop: threading.Event, fed: list[str]) -> None:
    """Copy images into the hot folder at ``rate`` per second (atomically: temp name, then rename)."""
    started = time.monotonic()
    index = 0
    while not stop.is_set():
        due = started + index / rate
        delay = due - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        source = images[index % len(images)]
        name = f"part_{index:06d}_{source.parent.name}{source.suffix}"
        temporary = hot / f".{name}.part"
        shutil.copyfile(source, temporary)
        os.replace(temporary, hot / name)
        fed.append(str(hot / name))
        index += 1


def wait_until(condition, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=5.0, help="files dropped into the hot folder per second")
    parser.add_argument("--model", type=Path, help="model file (default: fit one on --refs)")
    parser.add_argument("--refs", type=Path, default=DEFAULT_REFS, help="good images to fit on (the first 20)")
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="images fed, cycled (recursive)")
    parser.add_argument("--kill", action="store_true", help="SIGKILL the broker instead of SIGTERM")
    parser.add_argument("--down", type=float, default=5.0, help="seconds the broker stays down")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    if MOSQUITTO is None:
        print("mosquitto is not installed (apt-get install mosquitto)", file=sys.stderr)
        return 2
    images = sorted(p for p in args.images.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".bmp"))
    if not images:
        print(f"no images under {args.images}", file=sys.stderr)
        return 2
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="soak_line_", dir=args.keep))
    else:
        work = Path(tempfile.mkdtemp(prefix="soak_line_"))
    env = dict(os.environ, OMP_NUM_THREADS="1", INSPECTOR_CONFIG_DIR=str(work / "config"),
               INSPECTOR_DATA_DIR=str(work / "data"), QT_QPA_PLATFORM="offscreen")
    try:
        return run(args, work, env, images)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path, env: dict, images: list[Path]) -> int:
    model = args.model or fit_model(work, args.refs, env)
    broker = Broker(work / "broker")
    broker.start()
    prefix = "soak"
    recorder = Recorder(broker.port, prefix)
    hot = work / "hot"
    hot.mkdir()
    db = work / "results.db"
    command = [sys.executable, "-m", "inspector", "-v", "serve", "--model", str(model), "--source",
               f"hotfolder:{hot}?poll=0.05", "--trigger", "hotfolder", "--db", str(db), "--maps", "fast",
               "--mqtt", f"mqtt://127.0.0.1:{broker.port}/{prefix}", "--station", STATION, "--drain", "30"]
    log = open(work / "serve.log", "w")
    serve = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    print(f"work folder {work}\nbroker 127.0.0.1:{broker.port}, serve pid {serve.pid}: {' '.join(command[2:])}",
          flush=True)
    fed: list[str] = []
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(hot, images, args.rate, stop, fed), daemon=True)
    outage: tuple[float, float] | None = None
    try:
        if not wait_until(lambda: recorder.state() == "running" or serve.poll() is not None, 180):
            raise SystemExit("the station never reported running")
        if serve.poll() is not None:
            raise SystemExit(f"serve ended at once (exit {serve.returncode}); see {work / 'serve.log'}")
        cpu_start, wall_start = cpu_seconds(serve.pid), time.monotonic()
        feeder.start()
        duration = args.minutes * 60.0
        half = wall_start + duration / 2
        while time.monotonic() < half and serve.poll() is None:
            time.sleep(1.0)
        down_at = time.time()
        broker.stop(signal.SIGKILL if args.kill else signal.SIGTERM)
        print(f"{time.monotonic() - wall_start:6.0f} s: broker stopped ({'SIGKILL' if args.kill else 'SIGTERM'}) "
              f"after {recorder.count()} messages, {len(fed)} files fed", flush=True)
        time.sleep(args.down)
        broker.start()
        outage = (down_at, time.time())
        print(f"{time.monotonic() - wall_start:6.0f} s: broker started again", flush=True)
        while time.monotonic() < wall_start + duration and serve.poll() is None:
            time.sleep(1.0)
        stop.set()
        feeder.join(timeout=10)
        fed_at_end = len(fed)
        print(f"{time.monotonic() - wall_start:6.0f} s: feeding stopped, {fed_at_end} files fed", flush=True)
        # The station decides what is still in the folder, then SIGTERM.
        wait_until(lambda: _rows(db) >= fed_at_end or serve.poll() is not None, 120, step=1.0)
        cpu_used, wall_used = cpu_seconds(serve.pid) - cpu_start, time.monotonic() - wall_start
        serve.send_signal(signal.SIGTERM)
        try:
            code = serve.wait(timeout=120)
        except subprocess.TimeoutExpired:
            serve.kill()
            code = serve.wait()
            print("serve did not end within 120 s of SIGTERM: killed", flush=True)
        rows = db_rows(db)
        wait_until(lambda: len({m["uid"] for _, m in recorder.decisions}) >= len(rows), 60)
        time.sleep(1.0)
    finally:
        stop.set()
        if serve.poll() is None:
            serve.kill()
        log.close()
        recorder.close()
        broker.stop(signal.SIGTERM)
    return report(args, work, rows, recorder, fed, code, cpu_used, wall_used, outage)


def _rows(db: Path) -> int:
    try:
        return len(db_rows(db))
    except Exception:  # noqa: BLE001 - not created yet, or busy
        return 0


def report(args, work: Path, rows: list[dict], recorder: Recorder, fed: list[str], code: int, cpu_used: float,
           wall_used: float, outage: tuple[float, float] | None) -> int:
    arrivals = list(recorder.decisions)
    db_uids = [row["uid"] for row in rows]
    db_set = set(db_uids)
    first: dict[str, tuple[float, dict]] = {}
    order: list[str] = []
    for arrived, message in arrivals:
        uid = message["uid"]
        if uid not in first:
            first[uid] = (arrived, message)
            order.append(uid)
    duplicates = len(arrivals) - len(first)
    missing = [uid for uid in db_uids if uid not in first]
    unknown = [uid for uid in order if uid not in db_set]
    in_order = [uid for uid in order if uid in db_set] == [uid for uid in db_uids if uid in first]
    position = {uid: i for i, uid in enumerate(db_uids)}
    inversions = sum(1 for a, b in zip(order, order[1:]) if a in position and b in position
                     and position[b] < position[a])
    delays = sorted((arrived - parse_time(message["time"])) * 1000.0 for arrived, message in first.values()
                    if message.get("time"))
    outside = []
    if outage is not None:
        outside = sorted((arrived - parse_time(m["time"])) * 1000.0 for arrived, m in first.values()
                         if m.get("time") and not outage[0] - 1 <= parse_time(m["time"]) <= outage[1] + 10)
    outbox = work / "results.db.mqtt-outbox" / "outbox.jsonl"
    left = len(outbox.read_text().splitlines()) if outbox.exists() else 0
    verdicts = {v: sum(1 for r in rows if r["verdict"] == v) for v in ("OK", "NG", "ERROR")}
    fed_set = set(fed)
    decided_fed = sum(1 for r in rows if r["path"] in fed_set)
    during = 0
    if outage is not None:
        during = sum(1 for _, m in first.values() if m.get("time") and outage[0] <= parse_time(m["time"]) <= outage[1])

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))] if values else float("nan")

    result = {
        "minutes": round(wall_used / 60, 2), "rate_per_s": args.rate, "broker_restart": "SIGKILL" if args.kill
        else "SIGTERM", "broker_down_s": args.down, "files_fed": len(fed), "decisions_in_db": len(rows),
        "fed_files_decided": decided_fed, "verdicts": verdicts, "messages_received": len(arrivals),
        "unique_received": len(first), "duplicates": duplicates, "missing": len(missing), "unknown": len(unknown),
        "in_database_order": in_order, "order_inversions": inversions, "decided_while_broker_down": during,
        "outbox_left": left, "serve_exit": code, "subscriber_connects": recorder.connects,
        "serve_cpu_percent_of_one_core": round(100.0 * cpu_used / wall_used, 1) if wall_used else None,
        "delay_ms_median": round(statistics.median(delays), 1) if delays else None,
        "delay_ms_p99": round(pct(delays, 99), 1), "delay_ms_max": round(delays[-1], 1) if delays else None,
        "delay_ms_p99_outside_outage": round(pct(outside, 99), 1) if outside else None,
    }
    print("\nsoak result")
    for key, value in result.items():
        print(f"  {key:34s} {value}")
    print(json.dumps(result))
    ok = (not missing and not unknown and in_order and left == 0 and code == 0 and len(rows) > 0
          and decided_fed == len(fed))
    if not ok:
        print(f"FAILED; serve log: {work / 'serve.log'}" + ("" if args.keep else " (removed: use --keep DIR)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
