"""A ``.safetensors`` model deciding on its exported graph (:mod:`inspector.export.accelerated`), on real images.

A fusion model is fitted on 30 real ELPV mono cells written to a reference folder (so
the parity check at load has the model's own references), then wrapped by
``accelerate``: verdicts, scores and fast maps of 8 good and 8 defective held-out
cells match the torch model (1e-4 relative, 1e-3 map units); the gradient map, the
hash, the detector, saving and recalibration are the torch model's. The fallbacks
(masked model, onnxruntime missing, failed export, failed parity) keep the torch model
and say why; an insisted runtime that cannot run is an error. ``inspector score``
says which runtime it runs on. OpenVINO cases are skipped when it is not installed.
"""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'inspector[onnx]')")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'inspector[onnx]')")

from inspector.cli.main import main  # noqa: E402
from inspector.core.imageio import read_image, write_image  # noqa: E402
from inspector.core.records import Frame  # noqa: E402
from inspector.export import accelerated as acc  # noqa: E402
from inspector.export.accelerated import AccelerationError, AcceleratedModel, accelerate  # noqa: E402
from inspector.pipeline.model import InspectionModel  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_threaded")]

RTOL = 1e-4
MAP_ATOL = 1e-3


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """The export cache (``<data dir>/cache/exports``) in this test's folder."""
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture(scope="module")
def fitted(elpv_mono, tmp_path_factory, single_threaded):
    """(torch model, its file, held-out frames): fusion on 30 real cells kept in a reference folder."""
    rng = np.random.default_rng(0)
    good = list(rng.permutation(elpv_mono.good))
    bad = list(rng.permutation(elpv_mono.defective))
    root = tmp_path_factory.mktemp("accelerated")
    refs = root / "references"
    refs.mkdir()
    images = [read_image(p) for p in good[:30]]
    for index, image in enumerate(images):
        write_image(refs / f"{index:03d}.png", image)
    model = InspectionModel.fit(images, detector="fusion", folds=5, device="cpu", reference_dir=str(refs))
    path = root / "part.safetensors"
    model.save(path)
    frames = [Frame(read_image(p), "elpv", i, path=str(p)) for i, p in enumerate(good[30:38] + bad[:8])]
    return InspectionModel.load(path, device="cpu"), path, frames


def _relative(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def test_accelerated_model_decides_like_torch(fitted, data_dir):
    model, _, frames = fitted
    fast, choice = accelerate(model, threads=1)
    assert isinstance(fast, AcceleratedModel) and fast.runtime == choice.runtime == "onnxruntime"
    assert choice.probes == acc.PARITY_REFERENCES + 2 and choice.worst <= RTOL
    assert choice.graph and choice.graph.startswith(str(data_dir / "cache" / "exports"))
    assert model.model_hash[:32] in choice.graph and "runtime onnxruntime" in choice.line()
    expected = model.inspect(frames, maps="fast")
    got = fast.inspect(frames, maps="fast")
    verdicts = [r.anomalous for r in expected]
    assert 0 < sum(verdicts) < len(frames), "parity means something only if both verdicts occur"
    assert [r.anomalous for r in got] == verdicts
    assert _relative([r.raw_score for r in got], [r.raw_score for r in expected]) <= RTOL
    assert _relative([r.score for r in got], [r.score for r in expected]) <= RTOL
    for mine, theirs in zip(got, expected):
        assert mine.model_hash == theirs.model_hash == model.model_hash and mine.threshold == theirs.threshold
        np.testing.assert_allclose(mine.heatmap.values, theirs.heatmap.values, rtol=0, atol=MAP_ATOL)
    # maps_on="ng" and the scores-only pass
    only_ng = fast.inspect(frames, maps="fast", maps_on="ng")
    assert [r.heatmap is not None for r in only_ng] == verdicts
    assert _relative(fast.score_images([f.image for f in frames]), model.score_images([f.image for f in frames])) \
        <= RTOL
    # everything else is the torch model's
    assert fast.detector is model.detector and fast.calibration is model.calibration and fast.info is model.info
    assert fast.supported_segmenters == model.supported_segmenters and "gradient" in fast.supported_segmenters
    assert fast.device == model.device and fast.regions is None and fast.pixel_calibration is model.pixel_calibration
    ng = frames[verdicts.index(True)]
    fast_map = [got[verdicts.index(True)].heatmap]
    mine = fast.heatmaps([ng.image], method="gradient", fast=fast_map)[0]
    theirs = model.heatmaps([ng.image], method="gradient", fast=fast_map)[0]
    np.testing.assert_array_equal(mine.values, theirs.values)  # the same torch code ran
    assert mine.method == "gradient"
    np.testing.assert_allclose(fast.heatmaps([ng.image])[0].values, expected[verdicts.index(True)].heatmap.values,
                               rtol=0, atol=MAP_ATOL)


def test_recalibration_and_saving_keep_the_torch_identity(fitted, tmp_path):
    model, _, frames = fitted
    fast, _ = accelerate(model, threads=1)
    middle = float(np.median(model.score_images([f.image for f in frames])))
    manual = model.calibration.with_threshold(middle)
    recalibrated = fast.with_calibration(manual)
    twin = model.with_calibration(manual)
    assert isinstance(recalibrated, AcceleratedModel) and recalibrated.detector is model.detector
    assert recalibrated.model_hash == twin.model_hash != model.model_hash
    got, want = recalibrated.inspect(frames), twin.inspect(frames)
    assert [r.anomalous for r in got] == [r.anomalous for r in want]
    assert all(r.model_hash == twin.model_hash and r.threshold == middle for r in got)
    saved = recalibrated.save(tmp_path / "recalibrated.safetensors")
    assert saved == twin.model_hash == InspectionModel.load(tmp_path / "recalibrated.safetensors").model_hash


def test_the_cache_is_reused_and_a_damaged_one_rebuilt(fitted):
    model, _, _ = fitted
    _, first = accelerate(model, threads=1)
    graph = Path(first.graph)
    inode = graph.stat().st_ino  # an export writes a new file and renames it over the old one
    _, second = accelerate(model, threads=1)
    assert second.graph == first.graph and graph.stat().st_ino == inode
    graph.write_bytes(b"not an onnx file")
    fast, third = accelerate(model, threads=1)
    assert third.runtime == "onnxruntime" and isinstance(fast, AcceleratedModel)
    assert graph.stat().st_size > 1_000_000


def test_an_active_signature_policy_exports_for_the_load_only(fitted, data_dir):
    model, _, frames = fitted
    fast, choice = accelerate(model, threads=1, trust=types.SimpleNamespace(active=True))
    assert choice.runtime == "onnxruntime" and choice.graph is None and "signature policy" in choice.reason
    assert not (data_dir / "cache").exists()
    assert [r.anomalous for r in fast.inspect(frames[:4])] == [r.anomalous for r in model.inspect(frames[:4])]


def test_fallbacks_keep_the_torch_model_and_say_why(fitted, texture_set, monkeypatch):
    model, _, _ = fitted
    mask = np.full((128, 128), 255, np.uint8)
    mask[:, :16] = 0
    masked = InspectionModel.fit(texture_set.train[:12], detector="gaussian", image_size=128, folds=3,
                                 device="cpu", mask=mask, fast_map=False)
    same, choice = accelerate(masked, threads=1)
    assert same is masked and choice.runtime == "torch" and "regions" in choice.reason
    assert choice.line().startswith("runtime torch: ")
    with pytest.raises(AccelerationError, match="--runtime onnx: .*regions"):
        accelerate(masked, "onnx", threads=1)
    assert accelerate(model, "torch")[0] is model

    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
        same, choice = accelerate(model, threads=1, order=("onnx",))
        assert same is model and "onnxruntime is not installed" in choice.reason

    import inspector.export.onnx_export as onnx_export

    with monkeypatch.context() as patch:
        def broken(*args, **kwargs):
            raise RuntimeError("exporter exploded")

        patch.setattr(onnx_export, "export_onnx", broken)
        same, choice = accelerate(model, threads=1, order=("onnx",))
        assert same is model and "the export failed (RuntimeError: exporter exploded)" in choice.reason
        with pytest.raises(AccelerationError, match="export failed"):
            accelerate(model, "onnx", threads=1)

    with monkeypatch.context() as patch:
        patch.setattr(acc, "PARITY_RTOL", -1.0)  # nothing can pass
        same, choice = accelerate(model, threads=1, order=("onnx",))
        assert same is model and "failed the parity check: raw scores differ" in choice.reason


def _score(capsys, *argv) -> tuple[int, list[dict], str]:
    code = main(["score", *map(str, argv), "--format", "jsonl", "--quiet", "--device", "cpu"])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines() if line.strip()], captured.err


def test_score_runs_on_the_graph_by_default_and_says_so(fitted, capsys):
    _, path, frames = fitted
    cells = [f.path for f in frames]
    code_a, auto, err_a = _score(capsys, path, *cells)
    code_t, torch_records, err_t = _score(capsys, path, *cells, "--runtime", "torch")
    assert code_a == code_t == 0
    assert "inspector: runtime onnxruntime for decisions" in err_a and "runtime onnxruntime" not in err_t
    assert [r["anomalous"] for r in auto] == [r["anomalous"] for r in torch_records]
    assert _relative([r["raw_score"] for r in auto], [r["raw_score"] for r in torch_records]) <= RTOL
    code, records, err = _score(capsys, path, *cells[:2], "--runtime", "onnx")
    assert code == 0 and len(records) == 2 and "runtime onnxruntime" in err


@pytest.mark.parametrize("insisted", [False, True])
def test_openvino_decides_like_torch(fitted, insisted, tmp_path, capsys):
    pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install 'inspector[openvino]')")
    from inspector.export.onnx_export import export_onnx
    from inspector.export.openvino_runtime import OpenVinoModel

    model, path, frames = fitted
    if insisted:
        fast, choice = accelerate(model, "openvino", threads=1)
        assert choice.runtime == fast.runtime == "openvino" and isinstance(fast, AcceleratedModel)
    else:  # the .onnx file itself, all 16 frames in one batch (a batch of 16 once broke the plugin's peak)
        export_onnx(model, tmp_path / "part.onnx")
        fast = OpenVinoModel(tmp_path / "part.onnx", threads=1)
        assert fast.runtime == "openvino" and fast.providers == ["OpenVINO:CPU"]
    expected, got = model.inspect(frames, maps="fast"), fast.inspect(frames, maps="fast")
    assert [r.anomalous for r in got] == [r.anomalous for r in expected]
    assert _relative([r.raw_score for r in got], [r.raw_score for r in expected]) <= RTOL
    for mine, theirs in zip(got, expected):
        assert mine.model_hash == model.model_hash
        np.testing.assert_allclose(mine.heatmap.values, theirs.heatmap.values, rtol=0, atol=MAP_ATOL)
    if not insisted:
        code, records, err = _score(capsys, tmp_path / "part.onnx", *[f.path for f in frames[:3]],
                                    "--runtime", "openvino")
        assert code == 0 and [r["anomalous"] for r in records] == [r.anomalous for r in expected[:3]]


def test_the_cache_keeps_the_most_recently_used_graphs(fitted, data_dir):
    model, _, _ = fitted
    _, choice = accelerate(model, threads=1)
    folder = Path(choice.graph).parent
    for index in range(acc.CACHE_KEEP + 2):  # older graphs of other models
        (folder / f"{index:032d}-old.onnx").write_bytes(b"x")
        stamp = 1_000_000 + index
        os.utime(folder / f"{index:032d}-old.onnx", (stamp, stamp))
    removed = acc.prune_cache()
    kept = sorted(folder.glob("*.onnx"))
    assert len(kept) == acc.CACHE_KEEP and Path(choice.graph) in kept
    assert sorted(p.name for p in removed) == [f"{i:032d}-old.onnx" for i in range(3)]


def test_export_verifies_with_the_stations_check(fitted, tmp_path, capsys, monkeypatch):
    from inspector.cli import export_cmd

    assert export_cmd.VERIFY_RTOL == acc.PARITY_RTOL
    _, path, _ = fitted
    out = tmp_path / "part.onnx"
    assert main(["export", str(path), "-o", str(out)]) == 0
    assert "verified:   onnxruntime decides probe images like torch" in capsys.readouterr().out
    monkeypatch.setattr(acc, "PARITY_RTOL", -1.0)
    assert main(["export", str(path), "-o", str(out)]) == 1
    assert "onnxruntime: raw scores differ" in capsys.readouterr().err
