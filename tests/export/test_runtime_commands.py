"""``inspector benchmark --runtime`` and ``inspector speed --runtime`` on real ELPV cells.

A one-category MVTec-layout folder is made of real cells (20 good for training, 6 good and
6 defective for testing). ``benchmark`` scores its test images on the runtime asked
for: the same image AUROC and escapes on torch and on the exported graph, each
category saying which runtime ran. ``speed`` times torch and the exported graph side by
side, each runtime checked for parity first.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'inspector[onnx]')")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'inspector[onnx]')")

from inspector.cli.main import main  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_threaded")]


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture(scope="module")
def cells_root(elpv_mono, tmp_path_factory):
    """``root/cells/{train/good, test/good, test/defect}`` of real ELPV mono cells."""
    rng = np.random.default_rng(1)
    good, bad = list(rng.permutation(elpv_mono.good)), list(rng.permutation(elpv_mono.defective))
    root = tmp_path_factory.mktemp("runtime_commands")
    for folder, paths in (("train/good", good[:20]), ("test/good", good[20:26]), ("test/defect", bad[:6])):
        target = root / "cells" / folder
        target.mkdir(parents=True)
        for index, path in enumerate(paths):
            shutil.copyfile(path, target / f"{index:03d}.png")
    return root


def _json(capsys, *argv) -> tuple[int, dict | None, str]:
    code = main([*map(str, argv), "--format", "json", "-q"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else None), captured.err


def test_benchmark_scores_on_the_chosen_runtime(cells_root, capsys, data_dir):
    results = {}
    for runtime in ("torch", "auto", "onnx"):
        code, report, err = _json(capsys, "benchmark", cells_root, "--image-size", "128", "--runtime", runtime)
        assert code == 0, err
        results[runtime] = report["categories"]["cells"]
    assert results["torch"]["runtime"] == "torch"
    assert results["auto"]["runtime"] == results["onnx"]["runtime"] == "onnxruntime"
    for runtime in ("auto", "onnx"):
        for key in ("image_auroc", "escape", "frr"):
            assert results[runtime][key] == pytest.approx(results["torch"][key], abs=1e-3), (runtime, key)
    assert not (data_dir / "cache").exists(), "a benchmark's models are exported into a temporary folder"


def test_benchmark_text_table_shows_the_runtime(cells_root, capsys):
    code = main(["benchmark", str(cells_root), "--image-size", "128", "-q", "--detector", "gaussian"])
    out = capsys.readouterr().out
    assert code == 0 and "runtime" in out.splitlines()[0] and "onnxruntime" in out


def test_speed_times_the_runtimes_side_by_side(cells_root, capsys):
    code, figures, err = _json(capsys, "speed", cells_root / "cells" / "train" / "good", "--fit-images", "10",
                               "--repeats", "3", "--image-size", "128")
    assert code == 0, err
    runtimes = figures["runtimes"]
    assert list(runtimes)[:2] == ["torch", "onnxruntime"]
    for name in ("torch", "onnxruntime"):
        row = runtimes[name]
        assert row["batch1_ms"] > 0 and row["batch_images_per_s"] > 0 and row["parity_worst"] <= 1e-4
    assert runtimes["torch"]["speedup"] == pytest.approx(1.0)
    try:
        import openvino  # noqa: F401
    except ImportError:
        assert "openvino is not installed" in runtimes["openvino"]["reason"]
    else:
        assert runtimes["openvino"]["batch1_ms"] > 0 and runtimes["openvino"]["parity_worst"] <= 1e-4
    code = main(["speed", str(cells_root / "cells" / "train" / "good"), "--fit-images", "10", "--repeats", "3",
                 "--image-size", "128", "--runtime", "onnx", "-q"])
    out = capsys.readouterr().out
    assert code == 0 and "onnxruntime" in out and "openvino" not in out and "vs torch" in out
