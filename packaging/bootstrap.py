#!/usr/bin/env python3
"""Set up a virtual environment for Inspector and run it, or its tests.

    python3 packaging/bootstrap.py run     # set up .venv, then open the station (demo by default)
    python3 packaging/bootstrap.py test    # set up .venv, then run the whole test suite headless

Anything after ``run`` is passed to the ``inspector`` command, anything after
``test`` to pytest. The environment is (re)installed only when pyproject.toml
changed. Needs Python 3.10 or newer; uses nothing outside the standard library.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("INSPECTOR_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".inspector-installed"


def _wanted_stamp() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_environment() -> None:
    """Create ``.venv`` and install Inspector with its test, onnx and scale extras, if not already current."""
    if sys.version_info < (3, 10):
        sys.exit(f"Inspector needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    if STAMP.is_file() and STAMP.read_text().strip() == _wanted_stamp() and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"creating virtual environment {VENV}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing Inspector and its dependencies (first time: a few minutes)", file=sys.stderr)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(pip + ["-e", f"{ROOT}[test,onnx,scale]"], check=True)
    STAMP.write_text(_wanted_stamp())


def run_tests(extra: list[str]) -> int:
    """Check the architecture contracts, then run pytest headless."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    lint = subprocess.run([str(BIN / "lint-imports"), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, env=env)
    if lint.returncode != 0:
        return lint.returncode
    return subprocess.run([str(PYTHON), "-m", "pytest", *extra], cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    """Dispatch ``run`` / ``test`` / ``setup``."""
    action, extra = (argv[0], argv[1:]) if argv else ("run", [])
    if action not in ("run", "test", "setup"):
        sys.exit(__doc__)
    ensure_environment()
    if action == "test":
        return run_tests(extra)
    if action == "run":
        return subprocess.run([str(BIN / "inspector"), *extra]).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
