"""The station runs an exported model: ``inspector gui --model part.onnx`` decides like the torch model.

A fusion model is fitted on 30 real ELPV mono cells, saved and exported. 6 good and 6
defective held-out cells (copied into a folder, named so that the folder source reads
them in a known order) are decided by ``inspector gui --source folder:... --quit-after 12
--db ...`` offscreen in a subprocess, once with the ``.safetensors`` file and once with the
``.onnx`` file (the ``.safetensors`` run with ``--runtime torch``, since the station would
otherwise accelerate it onto onnxruntime as well). The results databases must hold the same 12 files with the same verdicts,
raw scores within 1e-4 relative and the same model hash (the export carries the hash of
the model it was made from). ``inspector serve`` on the ``.onnx`` file with
``--maps fast+gradient`` gives the same verdicts, fast overlays of the NG frames and
one note that the export has no gradient map.
"""

from __future__ import annotations

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
from inspector.export.onnx_export import export_onnx  # noqa: E402
from inspector.pipeline.model import InspectionModel  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_threaded")]

REPO = Path(__file__).resolve().parents[2]
RTOL = 1e-4
FRAMES = 12


def _fit_and_export(elpv_mono, root: Path) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(0)
    good = list(rng.permutation(elpv_mono.good))
    bad = list(rng.permutation(elpv_mono.defective))
    model = InspectionModel.fit([read_image(p) for p in good[:30]], detector="fusion", folds=5, device="cpu")
    torch_path, onnx_path = root / "part.safetensors", root / "part.onnx"
    model.save(torch_path)
    export_onnx(model, onnx_path)
    parts = root / "parts"
    parts.mkdir()
    for index, source in enumerate(good[30:36] + bad[:6]):
        shutil.copyfile(source, parts / f"{index:03d}{Path(source).suffix}")
    return torch_path, onnx_path, parts


def _run_station(model: Path, parts: Path, db: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1",
               INSPECTOR_CONFIG_DIR=str(root / f"config-{model.suffix[1:]}"),
               INSPECTOR_DATA_DIR=str(root / f"data-{model.suffix[1:]}"))
    code = "import sys; from inspector.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, "gui", "--model", str(model), "--source", f"folder:{parts}",
                           "--quit-after", str(FRAMES), "--db", str(db), *extra],
                          env=env, capture_output=True, text=True, timeout=300, cwd=REPO)


def _rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT path, verdict, raw_score, threshold, model_hash FROM decisions "
                                  "ORDER BY path").fetchall()


@pytest.fixture(scope="module")
def world(elpv_mono, tmp_path_factory, single_threaded):
    """(safetensors path, onnx path, parts folder, the torch station's rows)."""
    root = tmp_path_factory.mktemp("onnx_station")
    torch_path, onnx_path, parts = _fit_and_export(elpv_mono, root)
    db = root / "results-torch.db"
    # --runtime torch: the station would otherwise run this .safetensors file on onnxruntime too
    done = _run_station(torch_path, parts, db, root, "--runtime", "torch")
    assert done.returncode == 0, done.stderr[-3000:]
    return torch_path, onnx_path, parts, _rows(db)


def test_station_on_the_export_decides_like_the_torch_model(world, tmp_path):
    torch_path, onnx_path, parts, rows = world
    results = {".safetensors": rows}
    for model in (onnx_path,):
        db = tmp_path / f"results-{model.suffix[1:]}.db"
        done = _run_station(model, parts, db, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        results[model.suffix] = _rows(db)
    torch_rows, onnx_rows = results[".safetensors"], results[".onnx"]
    assert len(torch_rows) == len(onnx_rows) == FRAMES
    assert [r[0] for r in onnx_rows] == [r[0] for r in torch_rows]
    verdicts = [r[1] for r in torch_rows]
    assert set(verdicts) == {"OK", "NG"}, "parity means something only if both verdicts occur"
    assert [r[1] for r in onnx_rows] == verdicts
    raw_t, raw_o = np.array([r[2] for r in torch_rows]), np.array([r[2] for r in onnx_rows])
    assert np.max(np.abs(raw_o - raw_t) / np.abs(raw_t)) <= RTOL
    assert not np.array_equal(raw_o, raw_t), "onnxruntime's float32 scores, not the torch model's again"
    assert {r[3] for r in onnx_rows} == {r[3] for r in torch_rows}
    assert {r[4] for r in onnx_rows} == {r[4] for r in torch_rows}, "the export records its source model's hash"


def test_serve_on_the_export_decides_like_the_torch_station(world, tmp_path):
    """``inspector serve --model part.onnx --maps fast+gradient``: same verdicts, fast overlays of the NG
    frames, and the gradient follow-up switched off with its one-time note."""
    _, onnx_path, parts, torch_rows = world
    db = tmp_path / "serve.db"
    env = dict(os.environ, OMP_NUM_THREADS="1", INSPECTOR_CONFIG_DIR=str(tmp_path / "config"),
               INSPECTOR_DATA_DIR=str(tmp_path / "data"))
    code = "import sys; from inspector.cli.main import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "serve", "--model", str(onnx_path), "--source",
                           f"folder:{parts}", "--db", str(db), "--quit-after", str(FRAMES), "--maps", "fast+gradient"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("no 'gradient' map") == 1
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT path, verdict, overlay_path FROM decisions ORDER BY path").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(r[0], r[1]) for r in torch_rows]
    assert all(r[2] and Path(r[2]).is_file() for r in rows if r[1] == "NG")
