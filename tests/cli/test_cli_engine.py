"""The headless command line on real textures with drawn defects: fit, score, calibrate, benchmark."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from inspector.cli.main import main
from inspector.metrics.image import auroc
from inspector.pipeline.model import InspectionModel


def _jsonl(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_fit_writes_a_calibrated_model(model_path):
    model = InspectionModel.load(model_path)
    assert model.detector_kind == "fusion" and model.backbone == "lite0"
    assert model.info["n_reference"] == 30
    assert len(model.calibration.good_scores) == 30
    assert model.calibration.expected_frr <= 0.01 + 1e-9


def test_score_jsonl_separates_defects_from_good(dataset, model_path, capsys):
    code = main(["score", str(model_path), str(dataset / "test"), "--format", "jsonl", "--quiet"])
    assert code == 0
    records = _jsonl(capsys)
    assert len(records) == 8 + 3 * len(list((dataset / "test").iterdir())[1:])
    for record in records:
        assert set(record) >= {"path", "score", "raw_score", "anomalous"}
        assert record["anomalous"] == (record["score"] > 1.0)
        assert record["score"] == pytest.approx(record["raw_score"] / record["threshold"], rel=1e-4)
    labels = [0 if "/good/" in r["path"] else 1 for r in records]
    assert auroc(labels, [r["score"] for r in records]) >= 0.9


def test_score_reports_bad_files_and_goes_on(dataset, model_path, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(dataset / "test" / "good" / "000.png", folder / "a.png")
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (folder / "notes.txt").write_text("not an image")
    shutil.copy(dataset / "test" / "good" / "001.png", folder / "c.png")
    code = main(["score", str(model_path), str(folder), "--format", "jsonl", "--quiet"])
    assert code == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["path"].rsplit("/", 1)[1] for r in records] == ["a.png", "b.png", "c.png"]
    assert "error" in records[1] and "score" not in records[1]
    assert "score" in records[0] and "score" in records[2]
    assert "notes.txt" in captured.err


def test_score_csv_and_table(dataset, model_path, capsys):
    assert main(["score", str(model_path), str(dataset / "test" / "good"), "--format", "csv", "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("path,score,raw_score,anomalous") and len(lines) == 9
    assert main(["score", str(model_path), str(dataset / "test" / "good" / "000.png"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "000.png" in out and ("OK" in out or "NG" in out)


def test_score_with_a_missing_model_fails_clearly(dataset, tmp_path, capsys):
    code = main(["score", str(tmp_path / "nope.safetensors"), str(dataset / "test")])
    assert code == 3
    assert "model file not found" in capsys.readouterr().err


def test_impossible_threshold_is_refused(dataset, model_path, capsys):
    code = main(["score", str(model_path), str(dataset / "test"), "--threshold", "-1", "-q"])
    assert code == 2
    assert "positive" in capsys.readouterr().err


def test_fit_on_an_empty_folder_fails_clearly(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["fit", str(tmp_path / "empty"), "-o", str(tmp_path / "m.safetensors"), "-q"])
    assert code == 2
    assert "no readable reference images" in capsys.readouterr().err


def test_fit_with_fewer_images_than_folds_fails_clearly(dataset, tmp_path, capsys):
    refs = tmp_path / "few"
    refs.mkdir()
    for path in sorted((dataset / "train" / "good").iterdir())[:12]:
        shutil.copy(path, refs / path.name)
    code = main(["fit", str(refs), "-o", str(tmp_path / "m.safetensors"), "--folds", "20", "-q"])
    assert code == 2
    assert "fewer than the 20 calibration folds" in capsys.readouterr().err


def test_info_without_defective_images_says_the_escape_rate_is_unknown(model_path, capsys):
    assert main(["info", str(model_path)]) == 0
    text = capsys.readouterr().out
    assert "escape rate:  unknown" in text and "--policy f1" in text


def test_calibrate_reuses_held_out_scores_of_reference_images(dataset, model_path, tmp_path, capsys):
    out = tmp_path / "recal.safetensors"
    code = main(["calibrate", str(model_path), "--good", str(dataset / "train" / "good"),
                 "--frr", "0.05", "-o", str(out), "-q"])
    assert code == 0
    assert "30 reference images scored held-out" in capsys.readouterr().out
    original, recalibrated = InspectionModel.load(model_path), InspectionModel.load(out)
    # The same unbiased k-fold scores, only a looser target: the threshold may only go down.
    assert sorted(recalibrated.calibration.good_scores) == pytest.approx(sorted(original.calibration.good_scores))
    assert recalibrated.threshold <= original.threshold
    assert recalibrated.calibration.expected_frr <= 0.05


def test_calibrate_with_bad_images_reports_escape_rate(dataset, model_path, tmp_path, capsys):
    bad = tmp_path / "bad"
    for folder in (dataset / "test").iterdir():
        if folder.name != "good":
            shutil.copytree(folder, bad / folder.name)
    out = tmp_path / "f1.safetensors"
    code = main(["calibrate", str(model_path), "--good", str(dataset / "test" / "good"), "--bad", str(bad),
                 "--policy", "f1", "-o", str(out), "-q"])
    assert code == 0
    text = capsys.readouterr().out
    assert "known-bad images" in text and "escape rate:  unknown" not in text
    calibration = InspectionModel.load(out).calibration
    assert calibration.policy == "f1" and calibration.expected_escape is not None
    assert calibration.expected_escape <= 0.2


def test_benchmark_json_contract(dataset, capsys):
    code = main(["benchmark", str(dataset), "--format", "json", "--image-size", "128", "-q"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    metrics = report["categories"]["brick"]
    assert set(metrics) >= {"image_auroc", "f1", "fit_s", "ms_per_image", "images_per_s"}
    assert metrics["image_auroc"] >= 0.9
    assert report["mean"]["image_auroc"] == pytest.approx(metrics["image_auroc"])
    # Escapes per defect type: every defective test folder, its size, a rate in [0, 1].
    defects = sorted(p.name for p in (dataset / "test").iterdir() if p.is_dir() and p.name != "good")
    assert sorted(metrics["by_type"]) == defects
    for defect, row in metrics["by_type"].items():
        assert row["n"] == len(list((dataset / "test" / defect).iterdir()))
        assert 0.0 <= row["escape"] <= 1.0
    # Measured rates come as counts with their 95 % intervals, which hold the rate itself.
    good = len(list((dataset / "test" / "good").iterdir()))
    assert metrics["escape_count"] == [round(metrics["escape"] * sum(r["n"] for r in metrics["by_type"].values())),
                                       sum(r["n"] for r in metrics["by_type"].values())]
    assert metrics["frr_count"][1] == good
    for key in ("escape", "frr"):
        low, high = metrics[f"{key}_interval"]
        assert low <= metrics[key] <= high and high - low > 0.05  # a few dozen test images: a wide interval
    from inspector.cli.benchmark_cmd import format_table

    text = format_table({"detectors": {"fusion": report}})
    count, total = metrics["frr_count"]
    assert f"false rejects {count} of {total}" in text and "95% interval" in text


def test_scores_are_reproducible_from_the_file(dataset, model_path):
    from inspector.core.imageio import read_image

    image = read_image(dataset / "test" / "good" / "000.png")
    first = InspectionModel.load(model_path).score_images([image])
    second = InspectionModel.load(model_path).score_images([image])
    np.testing.assert_array_equal(first, second)
