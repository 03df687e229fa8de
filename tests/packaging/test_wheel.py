"""The built wheel carries the data files the demo needs, where :mod:`inspector.resources` looks for them.

``pip wheel --no-deps`` builds the wheel from a copy of this checkout's files (tracked and
untracked, not ignored: no stale ``build/`` or ``*.egg-info`` gets in, and nothing is written
into the checkout; no network: the build backend comes from the venv, ``--no-build-isolation``). The test then checks, inside
the archive, that every file under ``resources/textures`` (the demo's and the synthetic
data sets' textures, read through :func:`inspector.resources.resource_path`) is there
at the path an installed ``inspector/resources.py`` resolves (``<site-packages>/resources/...``),
byte for byte, and that the package itself is in it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

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


def test_wheel_has_the_demo_resources_where_resources_py_looks(wheel):
    textures = sorted(p for p in (REPO / "resources" / "textures").iterdir() if p.is_file())
    assert any(p.suffix == ".png" for p in textures)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for path in textures:
            member = f"resources/textures/{path.name}"  # site-packages/inspector/../resources/textures
            assert member in names, f"{member} missing from {wheel.name}"
            assert archive.read(member) == path.read_bytes()
        assert "inspector/resources.py" in names
        assert "inspector/cli/main.py" in names and "inspector/export/onnx_runtime.py" in names
        assert not any(name.startswith("resources/screenshots/") for name in names), "README images stay out"


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
    assert Path(module).is_relative_to(target) and Path(textures) == target / "resources" / "textures"
    made = subprocess.run([sys.executable, "-m", "inspector", "make-dataset", str(work / "data"), "--kind",
                           "synthetic", "--size", "64"], capture_output=True, text=True, env=env, cwd=work,
                          timeout=300)
    assert made.returncode == 0, made.stderr[-3000:]
    for texture in ("brick", "grass", "gravel"):
        assert any((work / "data" / texture).rglob("*.png")), texture
