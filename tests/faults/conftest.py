"""Fault tests: the station's Qt checks, as tests/gui has them (Qt warnings and leaked worker threads fail)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gui"))  # gui_stubs

_BENIGN = ("propagateSizeHints", "raise()", "Fontconfig", "XDG_RUNTIME_DIR")


@pytest.fixture(autouse=True)
def no_qt_leaks(request):
    """As tests/gui does: fail on Qt warnings and on worker threads left running."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    qtlog = request.getfixturevalue("qtlog")
    yield
    from PySide6.QtCore import QtMsgType

    from inspector.workers.thread_host import running_worker_threads

    warnings = [r.message for r in qtlog.records if r.type != QtMsgType.QtDebugMsg and r.type != QtMsgType.QtInfoMsg
                and not any(b in r.message for b in _BENIGN)]
    assert warnings == [], f"Qt warnings: {warnings}"
    assert running_worker_threads() == [], "worker threads left running"
