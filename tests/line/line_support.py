"""Helpers of the line tests: a Mosquitto broker on a free loopback port, a paho subscriber,
``inspector serve`` in a subprocess, a small real model and real image crops."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHELSEA = ROOT / "tests" / "data" / "chelsea.png"
MOSQUITTO = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if os.path.exists(p)), None)
CROP = 96


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unique_in_order(messages: list[dict]) -> list[str]:
    """uids in the order they first arrived (a consumer drops at-least-once duplicates this way)."""
    seen, order = set(), []
    for message in messages:
        if message["uid"] not in seen:
            seen.add(message["uid"])
            order.append(message["uid"])
    return order


def wait_for(condition, timeout: float, step: float = 0.05, what: str = "condition"):
    """Poll ``condition()`` until truthy (returned) or ``timeout`` seconds passed (AssertionError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class Broker:
    """A Mosquitto process on 127.0.0.1 with its own config (persistence on, so that a subscriber's
    session and the messages queued for it survive a restart, as on a line's broker).

    Args:
        folder: Its config, data and logs.
        listener: Lines that follow ``listener PORT 127.0.0.1`` (TLS files, ``require_certificate``).
        settings: Global lines replacing ``allow_anonymous true`` (e.g. a ``password_file``).
    """

    def __init__(self, folder: Path, listener: str = "", settings: str = "allow_anonymous true\n") -> None:
        self.folder = folder
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        (folder / "data").mkdir(parents=True, exist_ok=True)
        self.conf.write_text(f"{settings}persistence true\n"
                             f"persistence_location {folder / 'data'}/\nautosave_interval 1\n"
                             "max_queued_messages 100000\n"
                             # as root it would switch to the user "mosquitto", who cannot write here
                             f"user {getpass.getuser()}\n"
                             f"listener {self.port} 127.0.0.1\n{listener}")
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}/line"

    def start(self) -> None:
        log = open(self.folder / f"mosquitto-{self.starts}.log", "wb")
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        wait_for(self._accepts, 10, what=f"mosquitto on port {self.port}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        self.process = None

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False


class Subscriber:
    """A paho subscriber with a persistent session (QoS 1) that records every message it gets."""

    def __init__(self, port: int, topic: str = "line/#", *, ca: Path | None = None, cert: Path | None = None,
                 key: Path | None = None, username: str | None = None, password: str | None = None) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, dict, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{port}", clean_session=False)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca), certfile=cert and str(cert), keyfile=key and str(key))
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        assert self.subscribed.wait(10), "the subscriber could not subscribe"

    def _on_message(self, client, userdata, message) -> None:
        if message.topic.endswith("/command"):
            return  # the test's own commands (plain text or JSON)
        with self._lock:
            self.messages.append((message.topic, json.loads(message.payload), bool(message.retain)))

    def decisions(self) -> list[dict]:
        with self._lock:
            return [m for t, m, _ in self.messages if t.endswith("/decision")]

    def statuses(self) -> list[dict]:
        with self._lock:
            return [m for t, m, _ in self.messages if t.endswith("/status")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def write_frames(folder: Path, count: int, seed: int = 0, ng_every: int = 0) -> list[Path]:
    """Real 96x96 crops of tests/data/chelsea.png; every ``ng_every``-th has a black square painted on."""
    image = cv2.imread(str(CHELSEA))
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    height, width = image.shape[:2]
    paths = []
    for i in range(count):
        y, x = int(rng.integers(0, height - CROP)), int(rng.integers(0, width - CROP))
        crop = image[y:y + CROP, x:x + CROP].copy()
        if ng_every and i % ng_every == ng_every - 1:
            crop[20:70, 20:70] = 0
        path = folder / f"frame_{i:04d}.png"
        cv2.imwrite(str(path), crop)
        paths.append(path)
    return paths


def serve(args: list[str], env: dict, **popen) -> subprocess.Popen:
    """Start ``inspector serve ARGS`` (through its module, stderr to a pipe)."""
    return subprocess.Popen([sys.executable, "-m", "inspector.cli.serve_cmd", "-v", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def finish(process: subprocess.Popen, timeout: float = 90) -> tuple[int, str]:
    """Wait for a serve process; its exit code and stderr."""
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"serve did not end within {timeout:g} s:\n{err[-3000:]}") from None
    return process.returncode, err


def db_rows(db: Path) -> list[dict]:
    """Every decision in the results database, oldest first."""
    from inspector.storage.results_db import ResultStore

    store = ResultStore.open_read_only(db)
    try:
        return list(reversed(store.query(limit=None)))
    finally:
        store.close()

