"""Model files: exact round trip, and a clear ModelFileError for every way a file can be wrong."""

from __future__ import annotations

import ast
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import inspector
from inspector.core.records import Frame
from inspector.pipeline.model import InspectionModel
from inspector.storage.model_file import (
    FORMAT_VERSION,
    MAGIC,
    ModelFileError,
    OutputPathError,
    check_output_path,
    content_hash,
    load_model_file,
    save_model_file,
)

pytestmark = pytest.mark.usefixtures("single_threaded")


@pytest.fixture(scope="module")
def saved(fitted_model, tmp_path_factory) -> Path:
    """The session model, saved once; tests copy it before damaging it."""
    path = tmp_path_factory.mktemp("model") / "brick.inspector"
    fitted_model.save(path)
    return path


@pytest.fixture(scope="module")
def loaded(saved) -> InspectionModel:
    return InspectionModel.load(saved, device="cpu")


def _header(path: Path) -> tuple[int, dict]:
    """Length and JSON of the safetensors header (8-byte little-endian length, then JSON)."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return length, json.loads(data[8:8 + length])


def _rewrite(source: Path, target: Path, change_metadata=None, change_tensors=None, rehash: bool = True) -> Path:
    """Write ``target`` from ``source`` with edited metadata/tensors, optionally with a valid content hash."""
    with safe_open(str(source), framework="pt") as handle:
        metadata = json.loads(handle.metadata()["inspector"])
    tensors = load_file(str(source))
    if change_metadata:
        change_metadata(metadata)
    if change_tensors:
        change_tensors(tensors)
    if rehash:
        metadata["content_sha256"] = content_hash(metadata, tensors)
    save_file(tensors, str(target), metadata={"inspector": json.dumps(metadata)})
    return target


def _load_error(path: Path, *patterns: str) -> str:
    with pytest.raises(ModelFileError) as info:
        InspectionModel.load(path, device="cpu")
    message = str(info.value)
    assert str(path) in message
    for pattern in patterns:
        assert pattern in message, message
    return message


# ---- round trip ----------------------------------------------------------------------------

def test_round_trip_gives_identical_scores(fitted_model, loaded, texture_set) -> None:
    images = texture_set.test_good[:3] + texture_set.test_bad[:3]
    np.testing.assert_array_equal(loaded.score_images(images), fitted_model.score_images(images))


def test_round_trip_keeps_the_model_hash(fitted_model, saved, loaded) -> None:
    assert len(fitted_model.model_hash) == 64
    assert loaded.model_hash == fitted_model.model_hash
    assert load_model_file(saved).metadata["content_sha256"] == fitted_model.model_hash


def test_model_hash_is_the_same_before_and_after_saving(texture_set, fitted_model, tmp_path) -> None:
    # A fresh model (sharing the fitted detector) whose hash is asked for before it is saved:
    # results inspected before saving must carry the hash the saved file will have.
    fresh = InspectionModel(fitted_model.detector, fitted_model.calibration, fitted_model.pixel_calibration,
                            fitted_model.info)
    before = fresh.model_hash
    assert fresh.save(tmp_path / "fresh.inspector") == before
    assert InspectionModel.load(tmp_path / "fresh.inspector", device="cpu").model_hash == before


def test_round_trip_keeps_calibration_and_identity(fitted_model, loaded) -> None:
    assert loaded.calibration == fitted_model.calibration
    assert loaded.threshold == fitted_model.threshold
    assert loaded.detector_kind == "gaussian" and loaded.backbone == "lite0"
    assert loaded.detector.levels == fitted_model.detector.levels
    assert loaded.detector.preprocessing == fitted_model.detector.preprocessing
    assert loaded.detector.config() == fitted_model.detector.config()
    assert loaded.info["n_reference"] == fitted_model.info["n_reference"] == 30
    assert loaded.info["software_version"] == inspector.__version__
    assert loaded.info == json.loads(json.dumps(fitted_model.info))
    assert set(loaded.detector.tensors()) == set(fitted_model.detector.tensors())


def test_loaded_model_inspects_frames(loaded, texture_set) -> None:
    frames = [Frame(image=image, source="test", frame_id=i)
              for i, image in enumerate(texture_set.test_good[:2] + texture_set.test_bad[:2])]
    results = loaded.inspect(frames)
    scores = loaded.score_images([frame.image for frame in frames])
    assert [r.frame for r in results] == frames
    for result, raw in zip(results, scores):
        assert result.model_hash == loaded.model_hash
        assert result.raw_score == pytest.approx(raw)
        assert result.score == pytest.approx(raw / loaded.threshold)
        assert result.anomalous == (raw > loaded.threshold)


def test_saving_is_deterministic_and_atomic(fitted_model, saved, tmp_path) -> None:
    target = tmp_path / "again.inspector"
    target.write_bytes(b"an older model")
    assert fitted_model.save(target) == fitted_model.model_hash
    assert target.read_bytes() == saved.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.inspector"]  # no temporary left over


def test_file_layout(saved, fitted_model) -> None:
    _, header = _header(saved)
    metadata = json.loads(header["__metadata__"]["inspector"])
    assert metadata["magic"] == MAGIC and metadata["format_version"] == FORMAT_VERSION == 1
    assert metadata["detector"] == "gaussian"
    assert metadata["backbone"] == "lite0"
    assert metadata["backbone_weights_sha256"] == fitted_model.detector.backbone_sha256
    assert metadata["preprocessing"]["image_size"] == 128
    assert metadata["calibration"]["threshold"] == fitted_model.threshold
    tensor_names = {name for name in header if name != "__metadata__"}
    assert tensor_names == set(fitted_model.detector.tensors())
    assert header["gaussian.level8.precision"]["dtype"] == "F64"


def test_save_model_file_round_trip_of_odd_tensors(tmp_path) -> None:
    tensors = {"empty": torch.zeros(0), "ints": torch.arange(5, dtype=torch.int32),
               "half": torch.ones(2, 3, dtype=torch.float16), "t": torch.arange(6.0).reshape(2, 3).t()}
    digest = save_model_file(tmp_path / "m.inspector", {"detector": "x", "note": "ü"}, tensors)
    contents = load_model_file(tmp_path / "m.inspector")
    assert contents.metadata["content_sha256"] == digest and contents.metadata["note"] == "ü"
    for name, tensor in tensors.items():
        assert torch.equal(contents.tensors[name], tensor)


# ---- damaged files -------------------------------------------------------------------------

@pytest.mark.parametrize("keep", ["all_but_one", "half", "header_part", "length_only"])
def test_truncated_file(saved, tmp_path, keep) -> None:
    data = saved.read_bytes()
    length, _ = _header(saved)
    cut = {"all_but_one": len(data) - 1, "half": len(data) // 2, "header_part": 8 + length // 2,
           "length_only": 8}[keep]
    path = tmp_path / "cut.inspector"
    path.write_bytes(data[:cut])
    _load_error(path)


def test_flipped_byte_in_tensor_data_fails_checksum(saved, tmp_path) -> None:
    data = bytearray(saved.read_bytes())
    length, header = _header(saved)
    begin, end = header["gaussian.level3.mean"]["data_offsets"]
    data[8 + length + begin + (end - begin) // 2] ^= 0x10
    path = tmp_path / "tampered.inspector"
    path.write_bytes(bytes(data))
    _load_error(path, "checksum")


def test_edited_metadata_fails_checksum(saved, tmp_path) -> None:
    def lower_threshold(meta: dict) -> None:
        meta["calibration"]["threshold"] *= 0.5

    path = _rewrite(saved, tmp_path / "edited.inspector", change_metadata=lower_threshold, rehash=False)
    _load_error(path, "checksum")


def test_newer_format_version(saved, tmp_path) -> None:
    def newer(meta: dict) -> None:
        meta["format_version"] = 99

    path = _rewrite(saved, tmp_path / "future.inspector", change_metadata=newer, rehash=False)
    message = _load_error(path, "newer", "99")
    assert "Upgrade" in message


def test_plain_safetensors_file(tmp_path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({"weight": torch.ones(3)}, str(path))
    _load_error(path, "not an Inspector model")
    other = tmp_path / "other.safetensors"
    save_file({"weight": torch.ones(3)}, str(other), metadata={"format": "pt"})
    _load_error(other, "not an Inspector model")


def test_metadata_without_magic(saved, tmp_path) -> None:
    def strip(meta: dict) -> None:
        del meta["magic"]

    _load_error(_rewrite(saved, tmp_path / "nomagic.inspector", change_metadata=strip), "not an Inspector model")


def test_metadata_that_is_not_json(tmp_path) -> None:
    path = tmp_path / "badjson.inspector"
    save_file({"weight": torch.ones(3)}, str(path), metadata={"inspector": "{not json"})
    _load_error(path, "corrupt")


@pytest.mark.parametrize("content", [b"", b"hello, I am not a model", bytes(range(256)) * 4])
def test_not_a_safetensors_file(tmp_path, content) -> None:
    path = tmp_path / "junk.inspector"
    path.write_bytes(content)
    _load_error(path)


def test_pickle_file_is_refused(tmp_path) -> None:
    path = tmp_path / "old.pth"
    torch.save({"means": torch.ones(3)}, path)
    _load_error(path)


def test_missing_file(tmp_path) -> None:
    _load_error(tmp_path / "absent.inspector", "not found")
    with pytest.raises(ModelFileError):
        load_model_file(tmp_path)  # a folder is not a model file


def test_other_backbone_weights_ask_for_a_refit(saved, tmp_path) -> None:
    def other_weights(meta: dict) -> None:
        meta["backbone_weights_sha256"] = "ab" * 32

    path = _rewrite(saved, tmp_path / "otherweights.inspector", change_metadata=other_weights)
    assert load_model_file(path).metadata["backbone_weights_sha256"] == "ab" * 32  # the file itself is valid
    message = _load_error(path, "refit")
    assert "abababababab" in message


def test_unknown_detector(saved, tmp_path) -> None:
    def unknown(meta: dict) -> None:
        meta["detector"] = "crystal-ball"

    _load_error(_rewrite(saved, tmp_path / "unknown.inspector", change_metadata=unknown), "crystal-ball")


def test_missing_tensor(saved, tmp_path) -> None:
    def drop(tensors: dict) -> None:
        del tensors["gaussian.level5.precision"]

    _load_error(_rewrite(saved, tmp_path / "missing.inspector", change_tensors=drop), "cannot rebuild")


def test_content_hash_covers_metadata_and_every_tensor() -> None:
    tensors = {"a": torch.arange(4.0), "b": torch.ones(2, 2, dtype=torch.float64)}
    base = content_hash({"x": 1}, tensors)
    assert base == content_hash({"x": 1, "content_sha256": "ignored"}, dict(reversed(list(tensors.items()))))
    assert content_hash({"x": 2}, tensors) != base
    assert content_hash({"x": 1}, {**tensors, "a": torch.arange(4.0) + 1e-6}) != base
    assert content_hash({"x": 1}, {**tensors, "b": torch.ones(4, dtype=torch.float64)}) != base  # shape
    assert content_hash({"x": 1}, {**tensors, "a": torch.arange(4, dtype=torch.float32)}) == base
    assert content_hash({"x": 1}, {**tensors, "a": torch.arange(4, dtype=torch.int32)}) != base  # dtype


# ---- nothing is ever unpickled -------------------------------------------------------------

PACKAGE = Path(inspector.__file__).resolve().parent


def _sources() -> list[tuple[Path, str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20 and PACKAGE / "storage" / "model_file.py" in files
    return [(path, path.read_text(encoding="utf-8")) for path in files]


def test_no_pickle_loading_in_the_package() -> None:
    offenders = []
    for path, text in _sources():
        for needle in ("pickle.load", "cPickle", "dill.load", "joblib.load", "allow_pickle=True"):
            if needle in text:
                offenders.append(f"{path.relative_to(PACKAGE)}: {needle}")
    assert offenders == []


def _call_name(node: ast.Call) -> str:
    func, parts = node.func, []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def test_every_torch_load_is_weights_only() -> None:
    calls = []
    for path, text in _sources():
        if "torch" not in text:
            continue
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if isinstance(node, ast.Call) and _call_name(node) == "torch.load":
                weights_only = [k for k in node.keywords if k.arg == "weights_only"]
                safe = (len(weights_only) == 1 and isinstance(weights_only[0].value, ast.Constant)
                        and weights_only[0].value.value is True)
                calls.append((f"{path.relative_to(PACKAGE)}:{node.lineno}", safe))
            # `from torch import load` would escape the check above.
            if isinstance(node, ast.ImportFrom) and node.module == "torch":
                assert "load" not in {alias.name for alias in node.names}, path
    assert calls, "expected at least the backbone weights loader"
    assert [where for where, safe in calls if not safe] == []


# ---- writing: modes, temporary files, read-only targets, output checks ------------------------

def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_new_model_file_mode_follows_the_umask(fitted_model, tmp_path, umask) -> None:
    import os
    import stat

    previous = os.umask(umask)
    try:
        fitted_model.save(tmp_path / "m.safetensors")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "m.safetensors").stat().st_mode) == 0o666 & ~umask


def test_replaced_model_file_keeps_its_mode(fitted_model, tmp_path) -> None:
    import os
    import stat

    target = tmp_path / "m.safetensors"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    fitted_model.save(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert InspectionModel.load(target, device="cpu").model_hash == fitted_model.model_hash


def test_stale_temporary_files_of_dead_processes_are_removed_by_the_next_save(fitted_model, tmp_path) -> None:
    import os
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".m.safetensors.tmp-{dead_pid}-0123abcd"
    stale.write_bytes(b"half a model")
    running = tmp_path / f".m.safetensors.tmp-{os.getppid()}-89abcdef"  # a live process: left alone
    running.write_bytes(b"a save in progress")
    unrelated = tmp_path / ".m.safetensors.tmp-notapid"
    unrelated.write_bytes(b"not ours")
    fitted_model.save(tmp_path / "m.safetensors")
    assert _visible(tmp_path) == sorted(["m.safetensors", running.name, unrelated.name])


def test_failed_save_leaves_no_temporary_file_and_the_old_model(fitted_model, saved, tmp_path,
                                                                monkeypatch) -> None:
    import os

    target = tmp_path / "m.safetensors"
    target.write_bytes(saved.read_bytes())

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OutputPathError, match="No space left"):
        fitted_model.save(target)
    assert _visible(tmp_path) == ["m.safetensors"] and target.read_bytes() == saved.read_bytes()


def test_read_only_model_is_not_replaced_without_force(fitted_model, saved, tmp_path) -> None:
    import os

    target = tmp_path / "released.safetensors"
    target.write_bytes(b"released model")
    os.chmod(target, 0o444)
    with pytest.raises(OutputPathError, match="read-only"):
        fitted_model.save(target)
    assert target.read_bytes() == b"released model"
    fitted_model.save(target, overwrite_read_only=True)
    assert target.read_bytes() == saved.read_bytes()
    assert not os.stat(target).st_mode & 0o222  # still read-only


@pytest.mark.parametrize("case", ["folder", "parent_is_file", "unwritable"])
def test_output_path_is_checked_before_any_work(tmp_path, case) -> None:
    if case == "folder":
        target, pattern = tmp_path, "is a folder"
    elif case == "parent_is_file":
        (tmp_path / "notes.txt").write_text("x")
        target, pattern = tmp_path / "notes.txt" / "m.safetensors", "is a file, not a folder"
    else:
        if not Path("/proc/self").is_dir():
            pytest.skip("needs a folder nobody can create files in (/proc)")
        target, pattern = Path("/proc/m.safetensors"), "cannot write a model file in /proc"
    with pytest.raises(OutputPathError, match=pattern):
        check_output_path(target)
    assert issubclass(OutputPathError, ValueError)  # the CLI exits 2


def test_missing_parent_folders_are_created(tmp_path) -> None:
    path = check_output_path(tmp_path / "a" / "b" / "m.safetensors")
    assert path.parent.is_dir() and _visible(path.parent) == []  # the probe is gone
