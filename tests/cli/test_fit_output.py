"""`fit` and `calibrate` check where they write before any work; bad reference sets get a message."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from inspector.cli.main import main

pytestmark = pytest.mark.usefixtures("single_threaded")


@pytest.fixture(autouse=True)
def fresh_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", str(tmp_path / "config"))


@pytest.fixture(scope="module")
def refs(elpv_mono, tmp_path_factory) -> Path:
    """Ten real ELPV cells in a folder."""
    folder = tmp_path_factory.mktemp("refs")
    for path in elpv_mono.good[:10]:
        shutil.copyfile(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def model(refs, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fit") / "cells.safetensors"
    assert main(["fit", str(refs), "-o", str(path), "--detector", "gaussian", "--image-size", "32",
                 "--quiet"]) == 0
    return path


@pytest.fixture()
def no_fit(monkeypatch):
    """Fail the test if a fit starts: the output must be refused before."""
    from inspector.pipeline.model import InspectionModel

    def refuse(*args, **kwargs):
        raise AssertionError("the fit started although the output cannot be written")

    monkeypatch.setattr(InspectionModel, "fit", classmethod(refuse))


@pytest.mark.parametrize("case", ["folder", "parent_is_file", "unwritable_folder", "read_only_file"])
def test_fit_refuses_an_unusable_output_before_fitting(refs, tmp_path, capsys, no_fit, case) -> None:
    if case == "folder":
        output, expected = tmp_path, "is a folder"
    elif case == "parent_is_file":
        (tmp_path / "notes.txt").write_text("x")
        output, expected = tmp_path / "notes.txt" / "m.safetensors", "is a file, not a folder"
    elif case == "unwritable_folder":
        if not Path("/proc/self").is_dir():
            pytest.skip("needs /proc")
        output, expected = Path("/proc/m.safetensors"), "cannot write a model file in /proc"
    else:
        output, expected = tmp_path / "released.safetensors", "read-only"
        output.write_bytes(b"released")
        output.chmod(0o444)
    code = main(["fit", str(refs), "-o", str(output), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "Traceback" not in err


def test_fit_force_replaces_a_read_only_output(refs, tmp_path) -> None:
    output = tmp_path / "released.safetensors"
    output.write_bytes(b"released")
    output.chmod(0o444)
    assert main(["fit", str(refs), "-o", str(output), "--detector", "gaussian", "--image-size", "32",
                 "--quiet", "--force"]) == 0
    assert output.read_bytes()[:8] != b"released"


def test_calibrate_in_place_refuses_a_read_only_model(model, refs, tmp_path, capsys) -> None:
    target = tmp_path / "released.safetensors"
    shutil.copyfile(model, target)
    target.chmod(0o444)
    before = target.read_bytes()
    code = main(["calibrate", str(target), "--good", str(refs), "--quiet"])
    assert code == 2 and "read-only" in capsys.readouterr().err
    assert target.read_bytes() == before
    assert main(["calibrate", str(target), "--good", str(refs), "--frr", "0.2", "--quiet", "--force"]) == 0
    assert target.read_bytes() != before and not stat.S_IMODE(target.stat().st_mode) & 0o222


def test_calibrate_output_folder_is_refused(model, refs, tmp_path, capsys) -> None:
    assert main(["calibrate", str(model), "--good", str(refs), "-o", str(tmp_path), "--quiet"]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_identical_references_get_a_message_not_singular_matrix(elpv_mono, tmp_path, capsys) -> None:
    folder = tmp_path / "same"
    folder.mkdir()
    for index in range(10):
        shutil.copyfile(elpv_mono.good[0], folder / f"copy{index}.png")
    code = main(["fit", str(folder), "-o", str(tmp_path / "m.safetensors"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "the 10 reference images are identical" in err
    assert "Singular" not in err and not (tmp_path / "m.safetensors").exists()


def test_duplicate_references_are_warned_about(refs, elpv_mono, tmp_path, capsys) -> None:
    folder = tmp_path / "dups"
    shutil.copytree(refs, folder)
    shutil.copyfile(elpv_mono.good[0], folder / "extra_copy.png")
    assert main(["fit", str(folder), "-o", str(tmp_path / "m.safetensors"), "--detector", "gaussian",
                 "--image-size", "32", "--quiet"]) == 0
    assert "1 of the 11 reference images are exact copies" in capsys.readouterr().err


def test_gui_model_path_is_made_absolute(monkeypatch, tmp_path) -> None:
    pytest.importorskip("PySide6")
    import inspector.gui.app as app
    from inspector.cli import gui_cmd

    seen = {}
    monkeypatch.setattr(app, "run_gui", lambda **kwargs: seen.update(kwargs) or 0)
    monkeypatch.chdir(tmp_path)
    parser = __import__("argparse").ArgumentParser()
    gui_cmd.add_arguments(parser)
    assert gui_cmd.run(parser.parse_args(["--model", "models/part.safetensors"])) == 0
    assert seen["model_path"] == os.path.join(str(tmp_path), "models", "part.safetensors")


def test_references_with_too_few_distinct_images_get_a_message(elpv_mono, tmp_path, capsys) -> None:
    folder = tmp_path / "nearly_same"
    folder.mkdir()
    for index in range(9):
        shutil.copyfile(elpv_mono.good[0], folder / f"copy{index}.png")
    shutil.copyfile(elpv_mono.good[1], folder / "other.png")
    code = main(["fit", str(folder), "-o", str(tmp_path / "m.safetensors"), "--detector", "gaussian",
                 "--image-size", "32", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "too alike to fit a model (2 distinct of 10" in err and "Traceback" not in err
