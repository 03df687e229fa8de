"""The built wheel carries the data files the demo needs inside the package, and works installed.

``pip wheel --no-deps`` builds the wheel from a copy of this checkout's files (tracked and
untracked, not ignored: no stale ``build/`` or ``*.egg-info`` gets in, and nothing is written
into the checkout; no network: the build backend comes from the venv, ``--no-build-isolation``). The tests then check:

- inside the archive, that every file under ``resources/textures`` (the demo's and the
  synthetic data sets' textures, read through :func:`inspector.resources.resource_path`) is
  there as ``inspector/_resources/textures/...`` (setup.py's build step), byte for byte, and
  that nothing named ``resources`` is at the archive's top;
- installed with ``--no-deps --target`` and run from elsewhere: ``make-dataset`` finds them;
- (``-m wheel``) installed, not editable, in a fresh virtual environment, from a folder
  outside the checkout: ``inspector fit`` on real ELPV cells, ``inspector score`` and
  ``inspector gui --quit-after 3`` offscreen, exit codes and outputs checked.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from this checkout."""
    pytest.importorskip("setuptools")
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs the git checkout to list its files")
    out = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / name, source / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(source)], capture_output=True, text=True, timeout=600,
                          cwd=source)
    assert done.returncode == 0, done.stderr[-3000:]
    wheels = list(out.glob("inspector-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_has_the_demo_resources_inside_the_package(wheel):
    textures = sorted(p for p in (REPO / "resources" / "textures").iterdir() if p.is_file())
    assert any(p.suffix == ".png" for p in textures)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for path in textures:
            member = f"inspector/_resources/textures/{path.name}"  # inside the package
            assert member in names, f"{member} missing from {wheel.name}"
            assert archive.read(member) == path.read_bytes()
        assert "inspector/resources.py" in names
        assert "inspector/cli/main.py" in names and "inspector/export/onnx_runtime.py" in names
        assert not any("screenshots/" in name for name in names), "README images stay out"
        assert not any(name.startswith("resources/") for name in names), "no top-level resources folder"


def test_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    """Installed with ``pip install --no-deps --target`` (dependencies from this venv), run from elsewhere:
    ``inspector`` is imported from the install and ``make-dataset --kind synthetic`` finds its textures."""
    target, work = tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=300, cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    env = dict(__import__("os").environ, PYTHONPATH=str(target), OMP_NUM_THREADS="1",
               INSPECTOR_CONFIG_DIR=str(tmp_path / "config"), INSPECTOR_DATA_DIR=str(tmp_path / "data"))
    where = subprocess.run([sys.executable, "-c", "import inspector.resources as r; print(r.__file__); "
                            "print(r.resource_path('textures'))"], capture_output=True, text=True, env=env,
                           cwd=work, timeout=60)
    module, textures = where.stdout.split()
    assert Path(module).is_relative_to(target)
    assert Path(textures) == target / "inspector" / "_resources" / "textures" and not (target / "resources").exists()
    made = subprocess.run([sys.executable, "-m", "inspector", "make-dataset", str(work / "data"), "--kind",
                           "synthetic", "--size", "64"], capture_output=True, text=True, env=env, cwd=work,
                          timeout=300)
    assert made.returncode == 0, made.stderr[-3000:]
    for texture in ("brick", "grass", "gravel"):
        assert any((work / "data" / texture).rglob("*.png")), texture


def _project_site_packages() -> list[str]:
    import sysconfig

    return sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})


@pytest.mark.wheel
def test_wheel_in_a_fresh_venv_fits_scores_and_opens_the_station(wheel, elpv_mono, tmp_path):
    """A non-editable install in a fresh venv, used from a folder outside the checkout.

    The fresh venv gets Inspector from the wheel only (``pip install --no-deps``) and its
    dependencies from this project's venv through a ``.pth`` file naming this venv's
    site-packages: a real venv would download torch (about 5 GB with its CUDA libraries)
    and need the network. A ``.pth`` line only adds the folder to ``sys.path`` after the fresh
    venv's own site-packages; the ``.pth`` files inside that folder are not run, so this
    checkout's editable install (its finder ``.pth``) stays out and ``import inspector`` is the
    wheel's, which the test checks first.
    """
    import json
    import os
    import sqlite3

    venv, work = tmp_path / "venv", tmp_path / "elsewhere"
    work.mkdir()
    made = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], capture_output=True, text=True,
                          timeout=120)
    assert made.returncode == 0, made.stderr[-3000:]
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    (Path(site) / "inspector-test-dependencies.pth").write_text("\n".join(_project_site_packages()) + "\n")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                           str(wheel)], capture_output=True, text=True, timeout=300, cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen", PYTHONNOUSERSITE="1",
               INSPECTOR_CONFIG_DIR=str(tmp_path / "config"), INSPECTOR_DATA_DIR=str(tmp_path / "data"))
    inspector = str(venv / "bin" / "inspector")

    def run(*argv, timeout=300):
        return subprocess.run([*map(str, argv)], capture_output=True, text=True, env=env, cwd=work, timeout=timeout)

    where = run(python, "-c", "import inspector, inspector.resources as r; print(inspector.__file__); "
                "print(r.resource_path('textures'))")
    assert where.returncode == 0, where.stderr[-3000:]
    module, textures = map(Path, where.stdout.split())
    assert module.is_relative_to(site) and textures == Path(site) / "inspector" / "_resources" / "textures"
    assert sorted(p.name for p in textures.glob("*.png")) == sorted(
        p.name for p in (REPO / "resources" / "textures").glob("*.png"))
    assert not (Path(site) / "resources").exists()

    rng = np.random.default_rng(0)
    good, bad = list(rng.permutation(elpv_mono.good)), list(rng.permutation(elpv_mono.defective))
    refs, parts = work / "refs", work / "parts"
    refs.mkdir()
    parts.mkdir()
    for index, source in enumerate(good[:20]):
        shutil.copyfile(source, refs / f"{index:03d}.png")
    for index, source in enumerate(good[20:23] + bad[:3]):
        shutil.copyfile(source, parts / f"{index:03d}.png")
    model = work / "part.safetensors"
    fitted = run(inspector, "fit", refs, "-o", model, "--folds", "5", "-q")
    assert fitted.returncode == 0 and model.is_file(), fitted.stderr[-3000:]
    scored = run(inspector, "score", model, parts, "--format", "jsonl", "-q")
    assert scored.returncode == 0, scored.stderr[-3000:]
    records = [json.loads(line) for line in scored.stdout.splitlines() if line.strip()]
    assert [Path(r["path"]).name for r in records] == [f"{i:03d}.png" for i in range(6)]
    assert all(isinstance(r["anomalous"], bool) and r["raw_score"] > 0 for r in records)
    assert sum(r["anomalous"] for r in records) >= 1, "three defective cells, at least one NG"
    assert "inspector: runtime " in scored.stderr  # which runtime decided, and why
    db = work / "results.db"
    station = run(inspector, "gui", "--model", model, "--source", f"folder:{parts}", "--quit-after", "3",
                  "--db", db)
    assert station.returncode == 0, station.stderr[-3000:]
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT path, verdict FROM decisions ORDER BY path").fetchall()
    assert len(rows) == 3 and {verdict for _, verdict in rows} <= {"OK", "NG"}
