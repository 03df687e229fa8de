"""Only the build step pyproject.toml cannot declare: the demo's textures go inside the package.

The source keeps them in the top-level ``resources/textures`` (the layout of the design
card); a wheel or a non-editable ``pip install .`` carries them as
``inspector/_resources/textures`` inside the package, so that nothing named ``resources``
lands at the top of site-packages. :mod:`inspector.resources` looks there first, then in
the source tree (editable installs and checkouts), and in PyInstaller's bundle when frozen.
Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {"textures": ("*.png", "README.md")}
"""Sub-folders of ``resources/`` that the package carries, with the files taken from each
(``resources/screenshots`` are README images and stay out)."""
PACKAGE_FOLDER = Path("inspector") / "_resources"


class BuildPyWithResources(build_py):
    """``build_py``, then copy :data:`SHIPPED` from ``resources/`` into ``<build>/inspector/_resources``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads resources/ from the checkout itself
        for folder, patterns in SHIPPED.items():
            target = Path(self.build_lib) / PACKAGE_FOLDER / folder
            target.mkdir(parents=True, exist_ok=True)
            for pattern in patterns:
                for source in sorted((ROOT / "resources" / folder).glob(pattern)):
                    shutil.copyfile(source, target / source.name)


setup(cmdclass={"build_py": BuildPyWithResources})
