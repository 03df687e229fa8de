"""kill -9 of `inspector fit` at seeded random moments, and in the middle of writing the model file.

Whatever the moment, the model file under the output name is the old one, intact,
or the complete new one; temporary files a kill leaves are hidden and are removed
by the next save in that folder; the next fit succeeds.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from inspector.storage.model_file import FAULT_PAUSE_ENV, TEMP_PATTERN, load_model_file

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

MODEL_NAME = "cells.safetensors"


@pytest.fixture(scope="module")
def refs(elpv_mono, tmp_path_factory) -> Path:
    """Ten real ELPV cells (the smallest set the default detector fits)."""
    folder = tmp_path_factory.mktemp("refs")
    for path in elpv_mono.good[20:30]:
        shutil.copyfile(path, folder / path.name)
    return folder


@pytest.fixture()
def station(refs, tmp_path) -> tuple[Path, Path, bytes]:
    """The output folder with an older model already under the output name, and a settings folder.

    The older model is a small Gaussian one fitted in-process (no start-up cost); any
    valid model does: what matters is that it survives the kills byte for byte.
    """
    from inspector.core.imageio import list_images, read_images
    from inspector.pipeline.model import InspectionModel

    images = read_images(list_images([refs]).images).images
    output = tmp_path / "models" / MODEL_NAME
    InspectionModel.fit(images, detector="gaussian", image_size=32, device="cpu", fast_map=False).save(output)
    return output, tmp_path / "config", output.read_bytes()


def _fit(refs: Path, output: Path, config: Path, **env) -> subprocess.Popen:
    environment = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", INSPECTOR_CONFIG_DIR=str(config),
                       **env)
    return subprocess.Popen([sys.executable, "-m", "inspector", "fit", str(refs), "-o", str(output),
                             "--image-size", "64", "--quiet"], env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if TEMP_PATTERN.match(p.name)]


def _assert_old_or_complete(output: Path, old: bytes) -> str:
    """The file under the output name is the old model byte for byte, or a complete new model."""
    data = output.read_bytes()
    if data == old:
        return "old"
    load_model_file(output)  # raises on a partial or damaged file
    return "new"


def _wait_for_line(process: subprocess.Popen, marker: str, timeout: float) -> None:
    selector = selectors.DefaultSelector()
    selector.register(process.stderr, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        if not selector.select(timeout=1.0):
            continue
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return
    process.kill()
    raise AssertionError(f"{marker!r} never appeared; stderr: {''.join(seen)[-2000:]}")


@pytest.mark.usefixtures("single_threaded")
def test_kill_minus_nine_of_fit_never_leaves_a_partial_model(refs, station) -> None:
    output, config, old = station
    # 1. A seeded random moment of the run (start-up, reading, fitting: before the save).
    delay = float(np.random.default_rng(20261202).uniform(0.5, 3.0))
    process = _fit(refs, output, config)
    time.sleep(delay)
    _kill(process)
    assert _assert_old_or_complete(output, old) == "old"
    assert _visible(output.parent) == [MODEL_NAME]
    # 2. In the middle of writing the model file (the fault hook pauses with half of it written).
    process = _fit(refs, output, config, **{FAULT_PAUSE_ENV: "60"})
    _wait_for_line(process, "model file half written", timeout=300)
    pid = process.pid
    _kill(process)
    assert output.read_bytes() == old  # the old model, intact, under its name
    temps = _temps(output.parent)
    assert len(temps) == 1 and f".tmp-{pid}-" in temps[0].name and 0 < temps[0].stat().st_size
    assert _visible(output.parent) == [MODEL_NAME]  # the half-written file is hidden
    # 3. The next fit succeeds, writes a complete model and removes what the kill left.
    process = _fit(refs, output, config)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    contents = load_model_file(output)
    assert contents.metadata["detector"] == "fusion" and output.read_bytes() != old
    assert sorted(p.name for p in output.parent.iterdir()) == [MODEL_NAME]
