"""The headless station (``inspector serve``) on an accelerated ``.safetensors`` model, on real ELPV cells.

The station's model worker (``inspector/workers/model_worker.py``, ``ModelWorker._load``)
wraps a loaded ``.safetensors`` model with :func:`inspector.export.accelerated.accelerate`
(``--runtime auto``, the default). This test runs the real ``serve`` in a subprocess so, next
to a run of the same model with ``--runtime torch``, both with
``--maps fast+gradient``: the same 12 files with the same verdicts, raw scores within 1e-4
relative but not identical (onnxruntime's, not torch's again), the same threshold and model
hash, and gradient overlays for the NG frames (the gradient follow-up still runs on torch).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'inspector[onnx]')")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'inspector[onnx]')")
pytest.importorskip("PySide6")

from inspector.core.imageio import read_image  # noqa: E402
from inspector.pipeline.model import InspectionModel  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_threaded")]

REPO = Path(__file__).resolve().parents[2]
RTOL = 1e-4
FRAMES = 12
def _serve(model: Path, parts: Path, db: Path, root: Path, runtime: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", INSPECTOR_CONFIG_DIR=str(root / "config"),
               INSPECTOR_DATA_DIR=str(root / "data"))
    return subprocess.run([sys.executable, "-m", "inspector", "serve", "--model", str(model),
                           "--runtime", runtime, "--source", f"folder:{parts}",
                           "--db", str(db), "--quit-after", str(FRAMES), "--maps", "fast+gradient"],
                          env=env, capture_output=True, text=True, timeout=600, cwd=REPO)


def _rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT path, verdict, raw_score, threshold, model_hash, overlay_path FROM decisions "
                                  "ORDER BY path").fetchall()


def test_serve_on_the_accelerated_model_decides_like_torch(elpv_mono, tmp_path):
    rng = np.random.default_rng(0)
    good, bad = list(rng.permutation(elpv_mono.good)), list(rng.permutation(elpv_mono.defective))
    model = InspectionModel.fit([read_image(p) for p in good[:30]], detector="fusion", folds=5, device="cpu")
    path = tmp_path / "part.safetensors"
    model.save(path)
    parts = tmp_path / "parts"
    parts.mkdir()
    for index, source in enumerate(good[30:36] + bad[:6]):
        shutil.copyfile(source, parts / f"{index:03d}{Path(source).suffix}")
    runs = {}
    # OpenVINO too when installed: its infer requests once lived in a threading.local and were
    # destroyed with the thread state PySide makes for a slot on a Qt thread (a segfault at load).
    runtimes = ["torch", "auto"] + (["openvino"] if importlib.util.find_spec("openvino") else [])
    for runtime in runtimes:
        db = tmp_path / f"results-{runtime}.db"
        done = _serve(path, parts, db, tmp_path / f"run-{runtime}", runtime)
        assert done.returncode == 0, f"--runtime {runtime}: " + done.stderr[-3000:]
        runs[runtime] = (_rows(db), done.stderr)
    (torch_rows, _), (fast_rows, err) = runs["torch"], runs["auto"]
    assert "runtime onnxruntime for decisions" in err
    assert "no 'gradient' map" not in err
    assert len(torch_rows) == len(fast_rows) == FRAMES
    assert [r[0] for r in fast_rows] == [r[0] for r in torch_rows]
    verdicts = [r[1] for r in torch_rows]
    assert set(verdicts) == {"OK", "NG"}, "parity means something only if both verdicts occur"
    assert [r[1] for r in fast_rows] == verdicts
    raw_t, raw_f = np.array([r[2] for r in torch_rows]), np.array([r[2] for r in fast_rows])
    assert np.max(np.abs(raw_f - raw_t) / np.abs(raw_t)) <= RTOL
    assert not np.array_equal(raw_f, raw_t), "onnxruntime's float32 scores, not torch's again"
    assert {r[3] for r in fast_rows} == {r[3] for r in torch_rows}
    assert {r[4] for r in fast_rows} == {r[4] for r in torch_rows} == {model.model_hash}
    for row in fast_rows:
        if row[1] == "NG":
            assert row[5] and Path(row[5]).is_file()
    if "openvino" in runs:
        openvino_rows, openvino_err = runs["openvino"]
        assert "runtime openvino for decisions" in openvino_err
        assert [r[1] for r in openvino_rows] == verdicts
        raw_o = np.array([r[2] for r in openvino_rows])
        assert np.max(np.abs(raw_o - raw_t) / np.abs(raw_t)) <= RTOL
