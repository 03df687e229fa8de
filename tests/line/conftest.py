"""Fixtures of the line tests: a real Mosquitto broker, a paho subscriber, a small real model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.line.line_support import MOSQUITTO, ROOT, Broker, Subscriber, write_frames


@pytest.fixture
def broker(tmp_path):
    """A running broker; stopped after the test."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; .ci/run installs it)")
    broker = Broker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop(signal.SIGKILL)


@pytest.fixture
def subscriber(broker):
    sub = Subscriber(broker.port)
    yield sub
    sub.close()


@pytest.fixture(scope="session")
def line_model(tmp_path_factory) -> Path:
    """A small real Gaussian model (Lite0, 64 px) fitted with ``inspector fit`` on chelsea crops."""
    root = tmp_path_factory.mktemp("line_model")
    write_frames(root / "refs", 20, seed=100)
    path = root / "crops.safetensors"
    env = dict(os.environ, OMP_NUM_THREADS="1", INSPECTOR_CONFIG_DIR=str(root / "config"))
    done = subprocess.run([sys.executable, "-m", "inspector", "fit", str(root / "refs"), "-o", str(path),
                           "--image-size", "64", "--detector", "gaussian", "--quiet"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture
def serve_env(tmp_path) -> dict:
    """Environment of a serve subprocess: its own config and data folders, one thread."""
    return dict(os.environ, OMP_NUM_THREADS="1", INSPECTOR_CONFIG_DIR=str(tmp_path / "config"),
                INSPECTOR_DATA_DIR=str(tmp_path / "data"), QT_QPA_PLATFORM="offscreen")
