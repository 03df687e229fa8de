"""``inspector info`` shows a model's inspection and ignore regions: subprocesses on real ELPV cells."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def inspector(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "inspector", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def models(elpv_mono, tmp_path_factory):
    import shutil

    from inspector.core.imageio import write_image

    root = tmp_path_factory.mktemp("info")
    refs = root / "refs"
    refs.mkdir()
    for path in elpv_mono.good[:10]:
        shutil.copy(path, refs / path.name)
    mask = np.full((200, 200), 255, np.uint8)
    mask[:50, :] = 0          # a label strip along the top: 25 % of the frame
    mask[150:170, 20:60] = 0  # and a serial number: 2 %
    write_image(root / "mask.png", mask)
    masked, plain = root / "masked.safetensors", root / "plain.safetensors"
    for out, extra in ((masked, ["--mask", root / "mask.png"]), (plain, [])):
        done = inspector("fit", refs, "-o", out, "--detector", "gaussian", "--image-size", "64", "--folds", "3",
                         "--quiet", *extra)
        assert done.returncode == 0, done.stderr
    return masked, plain


def test_info_lists_the_regions_in_json_and_text(models):
    masked, plain = models
    done = inspector("info", masked, "--format", "json")
    assert done.returncode == 0, done.stderr
    regions = json.loads(done.stdout)["regions"]
    assert regions["enabled"] is True and regions["mask_size"] == [64, 64]
    assert regions["ignored_regions"] == 2
    assert abs(regions["ignored_fraction"] - 0.27) < 0.02
    assert abs(regions["inspected_fraction"] + regions["ignored_fraction"] - 1.0) < 1e-3
    assert regions["ignored_pixels"] == round(regions["ignored_fraction"] * 64 * 64)
    x0, y0, x1, y1 = regions["inspected_box"]
    assert (x0, x1, y1) == (0.0, 1.0, 1.0) and abs(y0 - 0.25) < 0.02

    text = inspector("info", masked)
    assert text.returncode == 0, text.stderr
    line = [row for row in text.stdout.splitlines() if row.startswith("regions:")][0]
    assert "inspected 7" in line and "ignored 2" in line and "in 2 regions" in line and "mask 64x64 px" in line

    none = inspector("info", plain, "--format", "json")
    assert json.loads(none.stdout)["regions"] == {"enabled": False, "inspected_fraction": 1.0, "ignored_fraction": 0.0}
    assert "regions:      none: the whole frame is inspected" in inspector("info", plain).stdout
