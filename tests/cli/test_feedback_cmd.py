"""``inspector feedback`` and ``fit --mask`` / ``calibrate --db`` as a user runs them: subprocesses, real ELPV cells."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inspector.storage.results_db import ResultStore

# `feedback` is run through main() with the module registered the way main.py will register it.
RUN = ("import sys; from inspector.cli import main as m, feedback_cmd; "
       "m.COMMANDS.setdefault('feedback', feedback_cmd); sys.exit(m.main(sys.argv[1:]))")


def inspector(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", RUN, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def cells(elpv_mono, tmp_path_factory):
    root = tmp_path_factory.mktemp("cells")
    rng = np.random.default_rng(3)
    good = list(rng.permutation(elpv_mono.good))
    refs = root / "refs"
    refs.mkdir()
    for path in good[:14]:
        shutil.copy(path, refs / path.name)
    mask = root / "mask.png"
    from inspector.core.imageio import write_image

    picture = np.full((300, 300), 255, np.uint8)
    picture[:60, :] = 0  # the top strip is ignored
    write_image(mask, picture)
    model = root / "cells.safetensors"
    done = inspector("fit", refs, "-o", model, "--detector", "gaussian", "--image-size", "96", "--folds", "5",
                     "--mask", mask, "--quiet")
    assert done.returncode == 0, done.stderr
    assert "regions:" in done.stdout and "% of the image ignored" in done.stdout, done.stdout
    return root, refs, model, good[14:17], list(elpv_mono.defective[:2])


def test_feedback_copies_records_and_refits(cells, tmp_path):
    from inspector.pipeline.model import InspectionModel

    root, refs, model, extra_good, bad = cells
    db = tmp_path / "results.sqlite3"
    new = tmp_path / "refitted.safetensors"
    done = inspector("feedback", model, "--good", *extra_good[:2], "--bad", bad[0], "--db", db,
                     "--refit", "-o", new)
    assert done.returncode == 0, done.stderr
    folder = Path(str(model) + ".feedback")
    kept_good = sorted((folder / "good").iterdir())
    assert [p.name for p in kept_good] == sorted(p.name for p in extra_good[:2])
    assert kept_good[0].read_bytes() == Path(extra_good[0].parent / kept_good[0].name).read_bytes()
    assert [p.name for p in (folder / "bad").iterdir()] == [bad[0].name]

    old_model, new_model = InspectionModel.load(model), InspectionModel.load(new)
    assert new_model.info["n_reference"] == 14 + 2
    assert new_model.info["reference_dir"] == str(refs)
    assert len(new_model.calibration.bad_scores) == 1  # the escape estimate uses the marked defect
    assert new_model.calibration.policy == "f1"  # fitted with the default rule: best F1 once defects are known
    np.testing.assert_array_equal(new_model.regions.inspected, old_model.regions.inspected)
    assert new_model.model_hash != old_model.model_hash
    carried = Path(str(new) + ".feedback")  # the new model keeps the marks for its own next refit
    assert sorted(p.name for p in (carried / "good").iterdir()) == [p.name for p in kept_good]

    from inspector.cli.main import main

    assert main(["calibrate", str(new), "--good", str(refs), "--db", str(db), "--quiet"]) == 0
    with ResultStore(db) as store:
        rows = list(reversed(store.query_audit()))
    assert [r["action"] for r in rows] == ["feedback"] * 3 + ["refit", "calibration"]
    assert [r["new_value"] for r in rows[:3]] == ["good", "good", "bad"]
    assert [r["old_value"] for r in rows[:3]] == [None] * 3  # the command line does not know the old verdict
    assert rows[0]["old_model_hash"] == old_model.model_hash and str(extra_good[0]) in rows[0]["detail"]
    assert rows[3]["old_model_hash"] == old_model.model_hash and rows[3]["new_model_hash"] == new_model.model_hash
    assert rows[4]["old_model_hash"] == new_model.model_hash and rows[4]["user"]
    assert rows[4]["new_model_hash"] == InspectionModel.load(new).model_hash


def test_refit_without_a_known_reference_folder_asks_for_one(cells, tmp_path, monkeypatch, capsys):
    from inspector.cli import feedback_cmd, main as cli
    from inspector.core.imageio import read_image
    from inspector.pipeline.model import InspectionModel

    monkeypatch.setitem(cli.COMMANDS, "feedback", feedback_cmd)
    root, refs, _, _, _ = cells
    images = [read_image(p) for p in sorted(refs.iterdir())]
    legacy = tmp_path / "legacy.safetensors"
    InspectionModel.fit(images, detector="gaussian", image_size=64, folds=3, device="cpu").save(legacy)
    out = tmp_path / "x.safetensors"
    assert cli.main(["feedback", str(legacy), "--refit", "-o", str(out), "--quiet"]) == 2
    assert "give the reference folder" in capsys.readouterr().err
    assert not out.exists()
    assert cli.main(["feedback", str(legacy), "--refit", "-o", str(out), "--references", str(refs), "--quiet"]) == 0
    assert InspectionModel.load(out).info["reference_dir"] == str(refs)
    assert cli.main(["feedback", str(legacy), "--refit"]) == 2  # -o is required
    assert cli.main(["feedback", str(legacy), "--good", str(tmp_path / "missing.png")]) == 2


def test_a_camera_frame_is_kept_as_png_and_names_never_collide(elpv_mono, tmp_path):
    from inspector.core.imageio import read_image
    from inspector.pipeline.feedback import add_feedback, feedback_folder, list_feedback

    frame = read_image(elpv_mono.good[0])
    folder = feedback_folder("", "ab" * 32)  # an unsaved model: the data dir, by hash
    assert folder.parent.name == "feedback" and folder.name == "ab" * 8
    folder = feedback_folder(tmp_path / "m.safetensors")
    first = add_feedback(folder, "good", image=frame, name="frame-000007")
    second = add_feedback(folder, "good", image=frame, name="frame-000007")
    assert first.name == "frame-000007.png" and second.name == "frame-000007-2.png"
    assert (read_image(first) == frame).all()
    assert not [p for p in (folder / "good").iterdir() if p.name.startswith(".")]  # no temporaries left
    assert sorted(p.name for p in list_feedback(folder).good) == sorted([first.name, second.name])
    with pytest.raises(ValueError):
        add_feedback(folder, "maybe", image=frame)


def test_refit_with_feedback_keeps_the_models_own_detector_options(cells, tmp_path):
    """A fusion model fitted with non-default options: the refit with feedback is fitted the same way."""
    from inspector.pipeline.model import InspectionModel

    root, refs, _, extra_good, bad = cells
    model = tmp_path / "custom.safetensors"
    done = inspector("fit", refs, "-o", model, "--detector", "fusion", "--image-size", "80", "--folds", "4",
                     "--frr", "0.05", "--mask", root / "mask.png", "--option", 'components=["global","bank"]',
                     "--option", "bank_coreset=96", "--option", "bank_dimensions=24", "--option", "levels=[3,4,5]",
                     "--option", "batch_size=4", "--quiet")
    assert done.returncode == 0, done.stderr
    new = tmp_path / "custom-refit.safetensors"
    done = inspector("feedback", model, "--good", extra_good[2], "--bad", bad[1], "--refit", "-o", new, "--quiet")
    assert done.returncode == 0, done.stderr

    old_model, new_model = InspectionModel.load(model), InspectionModel.load(new)
    old_config, new_config = old_model.detector.config(), new_model.detector.config()
    assert new_model.detector_kind == "fusion" and new_model.backbone == old_model.backbone
    assert new_config["components"] == ["global", "bank"] == old_config["components"]
    assert new_config["bank"]["coreset"] == 96 and new_config["bank"]["dimensions"] == 24
    assert new_config["levels"] == [3, 4, 5] and new_config["batch_size"] == 4
    assert new_model.detector.preprocessing.image_size == 80
    assert new_model.info["folds"] == 4 and new_model.info["n_reference"] == 14 + 1
    assert new_model.info["fit_request"]["options"] == old_model.info["fit_request"]["options"]
    cal = new_model.calibration
    assert (cal.policy, cal.target) == ("frr", 0.05)  # the fit's explicit --frr, the marked defect for escapes
    assert len(cal.bad_scores) == 1
    np.testing.assert_array_equal(new_model.regions.inspected, old_model.regions.inspected)


def test_refit_settings_of_a_model_without_a_fit_request_come_from_its_configuration(cells, tmp_path):
    """Model files written before fits recorded their request: the options are read back from the detector."""
    from inspector.core.imageio import read_image
    from inspector.pipeline.feedback import refit_settings
    from inspector.pipeline.model import InspectionModel

    _, refs, _, _, _ = cells
    images = [read_image(p) for p in sorted(refs.iterdir())[:10]]
    model = InspectionModel.fit(images, detector="fusion", image_size=64, folds=3, device="cpu",
                                components=("position", "bank"), bank_coreset=50, bank_dimensions=16, levels=(4, 5))
    del model.info["fit_request"]
    settings = refit_settings(model)
    assert settings.detector == "fusion" and settings.image_size == 64 and settings.folds is None
    assert settings.options == {"levels": [4, 5], "batch_size": 16, "components": ["position", "bank"],
                                "bank_coreset": 50, "bank_dimensions": 16, "bank_stride": 16, "bank_border": "shrink",
                                "bank_edge": 2, "map_bank_weight": 0.75}
    assert settings.mask is None and (settings.policy, settings.target) == (None, None)  # the default rule
