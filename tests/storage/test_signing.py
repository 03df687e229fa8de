"""Signed model files: a relabelled, re-checksummed model is refused where signatures are required."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from inspector.cli.main import main
from inspector.core.imageio import read_image
from inspector.pipeline.model import InspectionModel
from inspector.storage.model_file import ModelFileError, content_hash, signature_path
from inspector.storage.settings import Settings, save_settings
from inspector.storage.signing import (
    TrustPolicy,
    default_trust_policy,
    generate_key_pair,
    sign_model,
    trust_policy,
)

pytestmark = pytest.mark.usefixtures("single_threaded")


@pytest.fixture(scope="module")
def cells(elpv_mono) -> list[np.ndarray]:
    return [read_image(p) for p in elpv_mono.good[:10]]


@pytest.fixture(scope="module")
def lite1_model(cells, tmp_path_factory) -> Path:
    """A Gaussian model on EfficientNet-Lite1 (real ELPV cells, 64 px), saved once."""
    model = InspectionModel.fit(cells, detector="gaussian", backbone="lite1", image_size=64, device="cpu",
                                fast_map=False)
    path = tmp_path_factory.mktemp("signed") / "cells.safetensors"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    qa_private, qa_public, _ = generate_key_pair(folder / "qa.key")
    other_private, other_public, _ = generate_key_pair(folder / "mallory.key")
    return {"qa": qa_private, "qa.pub": qa_public, "other": other_private, "other.pub": other_public}


@pytest.fixture()
def signed(lite1_model, keys, tmp_path) -> Path:
    path = tmp_path / lite1_model.name
    shutil.copyfile(lite1_model, path)
    sign_model(path, keys["qa"])
    return path


@pytest.fixture()
def config(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "config"
    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", str(folder))
    monkeypatch.delenv("INSPECTOR_TRUSTED_KEYS", raising=False)
    monkeypatch.delenv("INSPECTOR_REQUIRE_SIGNED_MODELS", raising=False)
    return folder / "settings.json"


def _relabel_as_lite0(source: Path, target: Path) -> None:
    """What the issue did: call a Lite1 model Lite0 and recompute its checksum."""
    from inspector.detectors.base import detector_class

    with safe_open(str(source), framework="pt") as handle:
        metadata = json.loads(handle.metadata()["inspector"])
    tensors = load_file(str(source))
    lite0 = detector_class("gaussian")(device="cpu", backbone="lite0", image_size=64, fast_map=False)
    assert lite0.backbone_sha256 != metadata["backbone_weights_sha256"]
    metadata["backbone"] = metadata["detector_config"]["backbone"] = "lite0"
    metadata["backbone_weights_sha256"] = lite0.backbone_sha256
    metadata["content_sha256"] = content_hash(metadata, tensors)
    save_file(tensors, str(target), metadata={"inspector": json.dumps(metadata, sort_keys=True)})


def test_relabelled_rechecksummed_model_loads_without_signatures_but_is_refused_with_them(
        lite1_model, keys, tmp_path, cells, config) -> None:
    forged = tmp_path / "forged.safetensors"
    _relabel_as_lite0(lite1_model, forged)
    # The checksum alone cannot tell: the relabelled model loads and scores differently.
    relabelled = InspectionModel.load(forged, device="cpu", trust=TrustPolicy())
    original = InspectionModel.load(lite1_model, device="cpu", trust=TrustPolicy())
    assert relabelled.backbone == "lite0"
    assert not np.allclose(relabelled.score_images(cells[:2]), original.score_images(cells[:2]))
    required = trust_policy([keys["qa.pub"]], required=True)
    # Unsigned forgery: refused.
    with pytest.raises(ModelFileError, match="unsigned model refused"):
        InspectionModel.load(forged, device="cpu", trust=required)
    # The genuine file's signature copied next to the forgery: it signs other bytes.
    shutil.copyfile(signature_path(_signed_copy(lite1_model, keys, tmp_path)), signature_path(forged))
    with pytest.raises(ModelFileError, match="changed after it was signed"):
        InspectionModel.load(forged, device="cpu", trust=required)
    # Signed by the forger's own key: not trusted.
    sign_model(forged, keys["other"])
    with pytest.raises(ModelFileError, match="not trusted"):
        InspectionModel.load(forged, device="cpu", trust=required)


def _signed_copy(model: Path, keys, folder: Path) -> Path:
    path = folder / "genuine" / model.name
    path.parent.mkdir()
    shutil.copyfile(model, path)
    sign_model(path, keys["qa"])
    return path


def test_signed_model_loads_with_the_trusted_key(signed, keys) -> None:
    model = InspectionModel.load(signed, device="cpu", trust=trust_policy([keys["qa.pub"]], required=True))
    assert model.backbone == "lite1"


def test_forged_signature_bytes_are_refused(signed, keys) -> None:
    sidecar = signature_path(signed)
    document = json.loads(sidecar.read_text())
    raw = bytearray(base64.b64decode(document["signature"]))
    raw[5] ^= 0x01
    document["signature"] = base64.b64encode(bytes(raw)).decode()
    sidecar.write_text(json.dumps(document))
    with pytest.raises(ModelFileError, match="not valid"):
        InspectionModel.load(signed, device="cpu", trust=trust_policy([keys["qa.pub"]], required=True))


def test_one_flipped_byte_after_signing_is_refused(signed, keys) -> None:
    data = bytearray(signed.read_bytes())
    data[-3] ^= 0x10
    signed.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="changed after it was signed"):
        InspectionModel.load(signed, device="cpu", trust=trust_policy([keys["qa.pub"]], required=True))


def test_settings_require_signatures_for_every_load(signed, lite1_model, keys, config, tmp_path) -> None:
    unsigned = tmp_path / "unsigned.safetensors"
    shutil.copyfile(lite1_model, unsigned)
    assert InspectionModel.load(unsigned, device="cpu").backbone == "lite1"  # no policy: loads
    save_settings(Settings(trusted_keys=[str(keys["qa.pub"])], require_signed_models=True), config)
    assert default_trust_policy().required
    with pytest.raises(ModelFileError, match="unsigned"):
        InspectionModel.load(unsigned, device="cpu")  # default policy = the settings'
    assert InspectionModel.load(signed, device="cpu").backbone == "lite1"


def test_trusted_keys_without_requirement_still_refuse_a_bad_signature(signed, lite1_model, keys, config,
                                                                      tmp_path) -> None:
    save_settings(Settings(trusted_keys=[str(keys["qa.pub"])]), config)
    unsigned = tmp_path / "unsigned.safetensors"
    shutil.copyfile(lite1_model, unsigned)
    assert InspectionModel.load(unsigned, device="cpu")  # unsigned allowed when not required
    sign_model(unsigned, keys["other"])
    with pytest.raises(ModelFileError, match="not trusted"):
        InspectionModel.load(unsigned, device="cpu")


def test_saving_over_a_signed_model_removes_its_stale_signature(signed) -> None:
    model = InspectionModel.load(signed, device="cpu", trust=TrustPolicy())
    assert signature_path(signed).is_file()
    model.save(signed)
    assert not signature_path(signed).exists()


def test_cli_sign_verify_and_refuse(signed, lite1_model, keys, tmp_path, config, capsys, monkeypatch) -> None:
    from inspector.cli import main as main_module
    from inspector.cli import sign_cmd

    monkeypatch.setitem(main_module.COMMANDS, "sign", sign_cmd)  # registered by main.py; here in any case
    folder = tmp_path / "cli"
    assert main(["sign", "--new-key", str(folder / "line3.key")]) == 0
    private, public = folder / "line3.key", folder / "line3.key.pub"
    assert private.stat().st_mode & 0o077 == 0  # the private key is readable by its owner only
    assert main(["sign", "--new-key", str(private)]) == 2  # never overwrites a key
    model = folder / "m.safetensors"
    shutil.copyfile(lite1_model, model)
    assert main(["sign", str(model), "--verify", str(public)]) == 3  # unsigned
    assert main(["sign", str(model), "--key", str(private)]) == 0
    assert main(["sign", str(model), "--verify", str(public)]) == 0
    assert main(["sign", str(model), "--verify", str(keys["qa.pub"])]) == 3  # other key
    capsys.readouterr()
    # A command that loads models refuses an unsigned one with --trusted-key (exit 3).
    good = tmp_path / "good"
    good.mkdir()
    code = main(["calibrate", str(lite1_model), "--good", str(good), "--trusted-key", str(public), "-o",
                 str(tmp_path / "out.safetensors"), "--quiet"])
    assert code == 3 and "unsigned model refused" in capsys.readouterr().err


def test_unreadable_trusted_key_fails_closed(lite1_model, tmp_path) -> None:
    broken = tmp_path / "qa.pub"
    broken.write_text("not a key")
    with pytest.raises(ModelFileError, match="trusted key"):
        InspectionModel.load(lite1_model, device="cpu", trust=trust_policy([broken], required=True))


def test_station_model_worker_shows_a_refused_model_as_a_failed_load(lite1_model, signed, keys, config) -> None:
    pytest.importorskip("PySide6")
    from inspector.workers.model_worker import ModelWorker

    save_settings(Settings(trusted_keys=[str(keys["qa.pub"])], require_signed_models=True), config)
    worker = ModelWorker()
    failed, loaded = [], []
    worker.load_failed.connect(failed.append)
    worker.model_loaded.connect(lambda model, path: loaded.append(path))
    worker.load(str(lite1_model))  # unsigned
    assert loaded == [] and len(failed) == 1 and "unsigned model refused" in failed[0]
    worker.load(str(signed))
    assert loaded == [str(signed)]
