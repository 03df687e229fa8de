#!/usr/bin/env python3
"""Render packaging/inspector.svg to packaging/inspector.png (256 px) with Qt.

    build/venv/bin/python packaging/render_icon.py [SIZE]

Uses QtSvg (part of PySide6-Essentials); runs headless (offscreen platform).
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    size = int(argv[0]) if argv else 256
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (fonts, image plugins)
    renderer = QSvgRenderer(str(HERE / "inspector.svg"))
    if not renderer.isValid():
        sys.exit("render_icon: inspector.svg is not valid SVG for Qt")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    target = HERE / ("inspector.png" if size == 256 else f"inspector-{size}.png")
    if not image.save(str(target)):
        sys.exit(f"render_icon: could not write {target}")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
