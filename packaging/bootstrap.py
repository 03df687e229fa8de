#!/usr/bin/env python3
"""Set up a virtual environment for Inspector and run it, or its tests.

    python3 packaging/bootstrap.py run     # set up .venv, then open the station (demo by default)
    python3 packaging/bootstrap.py test    # set up .venv, then run the whole test suite headless

Anything after ``run`` is passed to the ``inspector`` command, anything after
``test`` to pytest. The environment is (re)installed only when pyproject.toml
changed. Needs Python 3.10 or newer; uses nothing outside the standard library.

On Linux, ``run`` and ``setup`` first check that the system libraries Qt's xcb
platform plugin needs are installed (``ldd`` on PySide6's ``libqxcb.so``) and
print the ``apt-get install`` command for the missing ones, instead of Qt's
"could not load the Qt platform plugin xcb" after the window failed to open.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
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
    """Create ``.venv`` and install Inspector with its test, onnx, openvino, scale and line extras, if not current."""
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
    subprocess.run(pip + ["-e", f"{ROOT}[test,onnx,openvino,scale,line]"], check=True)
    STAMP.write_text(_wanted_stamp())


# Debian/Ubuntu packages of the libraries whose name does not give the package by the usual rule
# (libNAME.so.N -> libNAME N, with a hyphen when NAME ends in a digit).
DEBIAN_PACKAGES = {
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libGLdispatch.so.0": "libglvnd0",
    "libgcc_s.so.1": "libgcc-s1",
    "libstdc++.so.6": "libstdc++6",
}
QT_HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb")


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that ships the shared library ``soname`` (e.g. ``libxcb-cursor.so.0``)."""
    if soname in DEBIAN_PACKAGES:
        return DEBIAN_PACKAGES[soname]
    match = re.fullmatch(r"(lib.+?)\.so\.(\d+)(?:\..*)?", soname)
    if not match:
        return soname
    name, major = match.group(1).lower(), match.group(2)
    return f"{name}-{major}" if name[-1].isdigit() else f"{name}{major}"


def qxcb_plugin() -> Path | None:
    """PySide6's xcb platform plugin in the environment (``None`` if PySide6 is not installed there)."""
    found = subprocess.run([str(PYTHON), "-c", "import os, PySide6; print(os.path.dirname(PySide6.__file__))"],
                           capture_output=True, text=True)
    if found.returncode != 0:
        return None
    plugin = Path(found.stdout.strip()) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def missing_libraries(library: Path) -> list[str]:
    """The shared libraries ``ldd`` reports as ``not found`` for ``library`` (direct and indirect)."""
    listed = subprocess.run(["ldd", str(library)], capture_output=True, text=True)
    return sorted({line.split()[0] for line in listed.stdout.splitlines() if "not found" in line})


def install_command(missing: list[str]) -> str:
    """The ``apt-get`` command that installs the packages of the ``missing`` libraries."""
    packages = sorted({debian_package(name) for name in missing})
    sudo = "sudo " if hasattr(os, "geteuid") and os.geteuid() != 0 else ""
    return f"{sudo}apt-get install -y " + " ".join(packages)


def check_qt_platform() -> bool:
    """On Linux with a display, check the xcb plugin's libraries; print what to install. True when usable."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or platform.split(":")[0] in QT_HEADLESS_PLATFORMS:
        return True
    if platform.startswith("wayland") or not shutil.which("ldd"):
        return True
    plugin = qxcb_plugin()
    if plugin is None:
        return True
    missing = missing_libraries(plugin)
    if not missing:
        return True
    print(f"Inspector's window needs system libraries that are not installed: {', '.join(missing)}\n"
          "(without them Qt stops with 'could not load the Qt platform plugin \"xcb\"'). On Debian or Ubuntu:\n\n"
          f"    {install_command(missing)}\n\n"
          "then run this again. Headless use (inspector fit, score, ...) works without them.", file=sys.stderr)
    return False


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
    if action in ("run", "setup"):
        usable = check_qt_platform()  # before any window: Qt's own message says nothing about what to install
        if action == "run" and not usable and not _headless(extra):
            return 1
    if action == "run":
        return subprocess.run([str(BIN / "inspector"), *extra]).returncode
    return 0


def _headless(extra: list[str]) -> bool:
    """A ``run`` of a command that opens no window (``run fit ...``, ``run score ...``)."""
    return bool(extra) and extra[0] not in ("gui",) and not extra[0].startswith("-")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
