"""ONNX export on real images: onnxruntime decides like the torch model (scores, verdicts, maps, metadata).

A fusion model (the default detector, Lite0 at its default 256 px, four evidences), the same
without the per-cell bank (``local``; the three evidences of older files), and a gaussian model
with the fast map (at 160 px, a non-native input size) are fitted on real ELPV
solar-cell images, exported, and run by :class:`inspector.export.onnx_runtime.OnnxModel`
on held-out good and defective cells (300x300, so both paths resize).

Tolerances: raw and normalized scores within 1e-4 relative, identical verdicts;
normalized fast maps (1.0 = pixel threshold) within :data:`MAP_ATOL` absolute.
"""

from __future__ import annotations

import argparse
import types

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'inspector[onnx]')")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'inspector[onnx]')")

from inspector.core.imageio import read_image  # noqa: E402
from inspector.core.records import Frame  # noqa: E402
from inspector.export.onnx_export import export_onnx  # noqa: E402
from inspector.export.onnx_runtime import OnnxModel, onnx_metadata, resize_for_model  # noqa: E402
from inspector.pipeline.model import InspectionModel  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_threaded")]

RTOL = 1e-4
MAP_ATOL = 1e-3
"""Normalized map units: 0.1 % of the calibrated pixel threshold."""
THREE_COMPONENTS = ["global", "position", "bank"]


@pytest.fixture(scope="module")
def cells(elpv_mono):
    """30 good reference cells, and 8 good + 8 defective held-out cells, as frames."""
    rng = np.random.default_rng(0)
    good = list(rng.permutation(elpv_mono.good))
    bad = list(rng.permutation(elpv_mono.defective))
    refs = [read_image(p) for p in good[:30]]
    frames = [Frame(read_image(p), "elpv", i, path=str(p)) for i, p in enumerate(good[30:38] + bad[:8])]
    return refs, frames


@pytest.fixture(scope="module")
def exported(cells, tmp_path_factory, single_threaded):
    """(kind -> (torch model, OnnxModel, onnx path)) for a fusion and a gaussian model."""
    refs, _ = cells
    folder = tmp_path_factory.mktemp("onnx")
    out = {}
    # fusion-3: the fusion detector without its per-cell bank (the ``local`` evidence), as older files.
    for kind, detector, size, options in (("fusion", "fusion", None, {}), ("gaussian", "gaussian", 160, {}),
                                          ("fusion-3", "fusion", None, {"components": THREE_COMPONENTS})):
        model = InspectionModel.fit(refs, detector=detector, image_size=size, folds=5, device="cpu", **options)
        path = folder / f"{kind}.onnx"
        export_onnx(model, path)
        out[kind] = (model, OnnxModel(path, ["CPUExecutionProvider"], threads=1), path)
    return out


def _relative(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.abs(b)))


@pytest.mark.parametrize("kind", ["fusion", "gaussian", "fusion-3"])
def test_scores_verdicts_and_maps_match_torch(exported, cells, kind):
    model, onnx_model, _ = exported[kind]
    frames = cells[1]
    expected = model.inspect(frames, maps="fast")
    got = onnx_model.inspect(frames, maps="fast")
    assert _relative([r.raw_score for r in got], [r.raw_score for r in expected]) <= RTOL
    assert _relative([r.score for r in got], [r.score for r in expected]) <= RTOL
    assert [r.anomalous for r in got] == [r.anomalous for r in expected]
    if kind.startswith("fusion"):  # the parity means something only if both verdicts occur
        assert 0 < sum(r.anomalous for r in expected) < len(frames)
    for mine, theirs in zip(got, expected):
        assert mine.threshold == theirs.threshold and mine.model_hash == theirs.model_hash
        assert mine.heatmap.values.shape == mine.frame.image.shape[:2] == theirs.heatmap.values.shape
        np.testing.assert_allclose(mine.heatmap.values, theirs.heatmap.values, rtol=0, atol=MAP_ATOL)
    assert max(r.heatmap.values.max() for r in got) > 1.0  # some defect crosses the pixel threshold


@pytest.mark.parametrize("kind", ["fusion", "fusion-3"])
def test_the_references_themselves_match_torch(exported, cells, kind):
    """The runtime's parity check at load scores the model's own references. With 30 of them
    the per-cell bank keeps every reference patch, so each distance is to the patch itself:
    computed as ``|q|^2 - 2 q.b + |b|^2`` it was cancellation noise, different in each runtime
    (9e-4 relative apart on such frames), and the check refused the graph."""
    model, onnx_model, _ = exported[kind]
    frames = [Frame(image, "ref", i) for i, image in enumerate(cells[0][:6])]
    expected = model.inspect(frames, maps=None)
    got = onnx_model.inspect(frames, maps=None)
    assert _relative([r.raw_score for r in got], [r.raw_score for r in expected]) <= RTOL


def test_dynamic_batch_gives_the_same_outputs(exported, cells):
    model, onnx_model, _ = exported["fusion"]
    size = onnx_model.input_size
    batch = np.stack([resize_for_model(f.image, size) for f in cells[1][:5]])
    five = onnx_model.run(batch)
    assert five["raw_score"].shape == (5,) and five["anomaly_map"].shape == (5, size, size)
    assert five["anomalous"].dtype == np.bool_ and five["score"].dtype == np.float32
    one = [onnx_model.run(batch[i:i + 1]) for i in range(5)]
    np.testing.assert_allclose(np.concatenate([o["raw_score"] for o in one]), five["raw_score"], rtol=1e-6)
    np.testing.assert_allclose(np.concatenate([o["anomaly_map"] for o in one]), five["anomaly_map"], atol=1e-5)
    np.testing.assert_allclose(five["score"], five["raw_score"] / np.float32(model.threshold), rtol=1e-6)
    assert list(five["anomalous"]) == [bool(v > model.threshold) for v in model.score_images(list(batch))]


def test_metadata_round_trip(exported):
    model, onnx_model, path = exported["fusion"]
    meta = onnx_metadata(path)
    cal = model.calibration
    assert meta["format"] == "inspector-onnx" and meta["format_version"] == 1
    assert meta["threshold"] == model.threshold and meta["model_hash"] == model.model_hash
    assert meta["detector"] == "fusion" and meta["backbone"] == model.backbone == "lite0"
    assert meta["backbone_weights_sha256"] == model.detector.backbone_sha256
    assert meta["input_size"] == model.detector.preprocessing.image_size == 256
    assert meta["calibration"]["policy"] == cal.policy and meta["calibration"]["target"] == cal.target
    assert meta["calibration"]["expected_frr"] == cal.expected_frr
    assert meta["calibration"]["expected_frr_interval"] == [cal.frr.low, cal.frr.high]
    assert meta["pixel_calibration"] == model.pixel_calibration["fast"].to_dict()
    assert set(meta["outputs"]) == {"raw_score", "score", "anomalous", "anomaly_map"}
    assert onnx_model.model_hash == model.model_hash and onnx_model.threshold == model.threshold
    assert onnx_model.calibration == cal  # the held-out evidence travels too (calibration view, re-deciding)
    assert repr(onnx_model).startswith("OnnxModel(fusion")


def test_threshold_override_and_maps_on_ng(exported, cells):
    model, onnx_model, _ = exported["fusion"]
    frames = cells[1]
    middle = float(np.median(model.score_images([f.image for f in frames])))
    expected = model.inspect(frames, threshold=middle)
    got = onnx_model.inspect(frames, maps="fast", threshold=middle, maps_on="ng")
    assert [r.anomalous for r in got] == [r.anomalous for r in expected]
    assert all(r.threshold == middle for r in got)
    assert [r.heatmap is not None for r in got] == [r.anomalous for r in got]
    assert onnx_model.inspect([]) == []
    manual = model.calibration.with_threshold(middle)
    redecided = onnx_model.with_calibration(manual)
    assert redecided.calibration == manual and onnx_model.threshold == model.threshold
    assert [r.anomalous for r in redecided.inspect(frames)] == [r.anomalous for r in expected]
    drawn, wanted = redecided.heatmaps([f.image for f in frames[:3]]), model.heatmaps([f.image for f in frames[:3]])
    for mine, theirs in zip(drawn, wanted):
        np.testing.assert_allclose(mine.values, theirs.values, rtol=0, atol=MAP_ATOL)
    with pytest.raises(ValueError):
        onnx_model.inspect(frames, maps="gradient")


def test_resize_rule_is_the_models(exported, cells):
    model = exported["fusion"][0]
    prep = model.detector.preprocessing
    big, small = cells[1][0].image, cells[1][0].image[:100, :150]
    for image in (big, small):
        assert np.array_equal(resize_for_model(image, prep.image_size), prep.resize_image(image))


def test_only_fusion_and_gaussian_export(tmp_path, exported):
    stub = types.SimpleNamespace(detector_kind="vae")
    with pytest.raises(ValueError, match="exportable detectors: fusion, gaussian"):
        export_onnx(stub, tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="opset"):
        export_onnx(exported["fusion"][0], tmp_path / "x.onnx", opset=13)
    masked = types.SimpleNamespace(detector_kind="fusion", regions=object())
    with pytest.raises(ValueError, match="regions"):  # not exported without its mask, rather than wrongly
        export_onnx(masked, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_export_command(exported, tmp_path, capsys):
    from inspector.cli import export_cmd

    model = exported["gaussian"][0]
    model_path = tmp_path / "part.safetensors"
    model.save(model_path)
    parser = argparse.ArgumentParser()
    export_cmd.add_arguments(parser)
    for argv, message in (([str(tmp_path / "none.safetensors"), "-o", str(tmp_path / "a.onnx")], "does not exist"),
                          ([str(model_path), "-o", str(tmp_path / "a.safetensors")], ".onnx file"),
                          ([str(model_path), "-o", str(tmp_path)], ".onnx file")):
        with pytest.raises(ValueError, match=message):
            export_cmd.run(parser.parse_args(argv))
    with pytest.raises(SystemExit):
        parser.parse_args([str(model_path), "-o", "a.onnx", "--opset", "16"])
    out = tmp_path / "sub" / "part.onnx"
    assert export_cmd.run(parser.parse_args([str(model_path), "-o", str(out)])) == 0
    printed = capsys.readouterr().out
    assert "verified:" in printed and "gaussian on lite0" in printed
    assert onnx_metadata(out)["model_hash"] == model.model_hash


def test_gaussian_without_fast_map_exports_scores_only(fitted_model, texture_set, tmp_path):
    path = tmp_path / "plain.onnx"
    meta = export_onnx(fitted_model, path)
    assert "anomaly_map" not in meta["outputs"] and "pixel_calibration" not in meta
    onnx_model = OnnxModel(path, ["CPUExecutionProvider"], threads=1)
    assert onnx_model.supported_segmenters == () and "fast" not in fitted_model.supported_segmenters
    images = texture_set.test_good[:3] + texture_set.test_bad[:3]
    frames = [Frame(image, "texture", i) for i, image in enumerate(images)]
    expected, got = fitted_model.inspect(frames), onnx_model.inspect(frames)
    assert _relative([r.raw_score for r in got], [r.raw_score for r in expected]) <= RTOL
    assert [r.anomalous for r in got] == [r.anomalous for r in expected]
    with pytest.raises(ValueError, match="no 'fast' map"):
        onnx_model.inspect(frames, maps="fast")
