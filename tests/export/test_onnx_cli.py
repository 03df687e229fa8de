"""``inspector score`` runs an exported model: the same records from the ``.onnx`` file as from the model file.

A fusion model is fitted on 30 real ELPV mono cells, saved and exported; 8 good and 8
defective held-out cells are scored through :func:`inspector.cli.main.main` with the
``.safetensors`` file and with the ``.onnx`` file. Verdicts must be identical and scores
within 1e-4 relative; ``--runtime`` mismatches and ``--segmenter gradient`` on an export
are usage errors (exit 2).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'inspector[onnx]')")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'inspector[onnx]')")

from inspector.cli.main import main  # noqa: E402
from inspector.core.imageio import read_image  # noqa: E402
from inspector.export.onnx_export import export_onnx  # noqa: E402
from inspector.export.onnx_runtime import OnnxModel  # noqa: E402
from inspector.pipeline.model import InspectionModel  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_threaded")]

RTOL = 1e-4


@pytest.fixture(scope="module")
def models(elpv_mono, tmp_path_factory, single_threaded):
    """(safetensors path, onnx path, held-out cell paths) for a fusion model on real cells."""
    rng = np.random.default_rng(0)
    good = list(rng.permutation(elpv_mono.good))
    bad = list(rng.permutation(elpv_mono.defective))
    refs = [read_image(p) for p in good[:30]]
    folder = tmp_path_factory.mktemp("onnx_cli")
    model = InspectionModel.fit(refs, detector="fusion", folds=5, device="cpu")
    torch_path, onnx_path = folder / "part.safetensors", folder / "part.onnx"
    model.save(torch_path)
    export_onnx(model, onnx_path)
    return torch_path, onnx_path, [str(p) for p in good[30:38] + bad[:8]]


def _score(capsys, *argv) -> tuple[int, list[dict], str]:
    code = main(["score", *map(str, argv), "--format", "jsonl", "--quiet", "--device", "cpu"])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines() if line.strip()], captured.err


def test_score_onnx_gives_the_torch_records(models, capsys):
    torch_path, onnx_path, cells = models
    code_t, torch_records, _ = _score(capsys, torch_path, *cells, "--runtime", "torch")
    code_o, onnx_records, err = _score(capsys, onnx_path, *cells, "--runtime", "onnx")
    assert code_t == code_o == 0
    assert [r["path"] for r in onnx_records] == [r["path"] for r in torch_records] == cells
    verdicts = [r["anomalous"] for r in torch_records]
    assert 0 < sum(verdicts) < len(cells), "parity means something only if both verdicts occur"
    assert [r["anomalous"] for r in onnx_records] == verdicts
    for key in ("raw_score", "score"):
        got = np.array([r[key] for r in onnx_records])
        want = np.array([r[key] for r in torch_records])
        assert np.max(np.abs(got - want) / np.abs(want)) <= RTOL, key
    assert [r["threshold"] for r in onnx_records] == [r["threshold"] for r in torch_records]
    assert f"{sum(verdicts)} NG" in err
    # auto picks onnx by the suffix: the same records as --runtime onnx
    _, auto_records, _ = _score(capsys, onnx_path, *cells)
    assert auto_records == onnx_records


def test_score_onnx_writes_fast_heatmaps(models, tmp_path, capsys):
    _, onnx_path, cells = models
    out = tmp_path / "maps"
    code, records, _ = _score(capsys, onnx_path, *cells[-4:], "--heatmaps", out)
    assert code == 0
    flagged = [r for r in records if r["anomalous"]]
    assert flagged, "defective cells should give at least one NG"
    for record in flagged:
        assert (out / record["heatmap"].split("/")[-1]).is_file()
        assert isinstance(record["regions"], list)
    assert all("heatmap" not in r for r in records if not r["anomalous"])


def test_runtime_mismatches_and_gradient_are_usage_errors(models, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    torch_path, onnx_path, cells = models
    # --runtime onnx with the .safetensors model: its decisions on its cached export (test_accelerated.py)
    code, records, err = _score(capsys, torch_path, cells[0], "--runtime", "onnx")
    assert code == 0 and len(records) == 1 and "runtime onnxruntime" in err
    code, records, err = _score(capsys, onnx_path, cells[0], "--runtime", "torch")
    assert code == 2 and not records and ".safetensors" in err
    code, records, err = _score(capsys, onnx_path, cells[0], "--heatmaps", tmp_path / "maps",
                                "--segmenter", "gradient")
    assert code == 2 and not records and "fast map" in err


def test_onnx_model_identity_survives_recalibration(models):
    _, onnx_path, _ = models
    first = OnnxModel(onnx_path, ["CPUExecutionProvider"], threads=1)
    recalibrated = first.with_calibration(first.calibration)
    again = OnnxModel(onnx_path, ["CPUExecutionProvider"], threads=1)
    assert recalibrated.detector is first.detector
    assert again.detector is not first.detector
    assert first.detector.kind == "fusion" and first.detector.model_hash == first.model_hash


def test_commands_that_need_the_torch_model_say_so(models, capsys):
    _, onnx_path, _ = models
    code = main(["info", str(onnx_path)])
    err = capsys.readouterr().err
    assert code == 2 and "needs the .safetensors model" in err


def test_signed_export_is_checked_like_a_model_file(models, tmp_path, capsys, monkeypatch):
    """``--trusted-key``: a signed export loads; the same file changed after signing is refused (exit 3).

    ``sign_model`` first checks that the file is a ``.safetensors`` model (``inspector sign``
    does not sign exports yet); that check is bypassed here to write a real signature
    sidecar over the export's bytes.
    """
    import shutil

    import inspector.storage.model_file as model_file
    from inspector.storage.signing import generate_key_pair, sign_model

    _, onnx_path, cells = models
    private, public, _ = generate_key_pair(tmp_path / "line.key")
    signed = tmp_path / "signed.onnx"
    shutil.copyfile(onnx_path, signed)
    with monkeypatch.context() as patch:
        patch.setattr(model_file, "load_model_file", lambda path, trust=None: None)
        sign_model(signed, private)
    code, records, _ = _score(capsys, signed, cells[0], "--trusted-key", public)
    assert code == 0 and len(records) == 1
    with open(signed, "ab") as handle:
        handle.write(b"\0")
    code, records, err = _score(capsys, signed, cells[0], "--trusted-key", public)
    assert code == 3 and not records and "changed after it was signed" in err
