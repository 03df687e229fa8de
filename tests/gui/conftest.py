"""Qt test setup: offscreen, fresh settings and data folders per test, and leaks punished.

A test fails when it leaves a worker thread running, a top-level widget alive,
or when Qt printed a warning while it ran.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QCoreApplication, QEvent, QtMsgType  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from inspector.gui.theme import configure_pyqtgraph  # noqa: E402
from inspector.workers.thread_host import running_worker_threads, shutdown_worker_threads  # noqa: E402


# Messages some platforms print that say nothing about our code.
_BENIGN = ("does not support propagateSizeHints", "does not support raise()", "does not support grabbing",
           "Fontconfig", "XDG_RUNTIME_DIR")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh config and data folder for every test (settings and results never leak)."""
    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture(autouse=True)
def leak_check(qapp: QApplication, qtlog):
    """Fail the test on worker threads or top-level widgets left alive, or on Qt warnings."""
    configure_pyqtgraph()
    before = set(map(id, QApplication.topLevelWidgets()))
    yield
    # pytest-qt has closed the widgets registered with qtbot.addWidget; delete them now.
    for _ in range(3):
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        qapp.processEvents()
    problems = []
    threads = running_worker_threads()
    if threads:
        problems.append(f"worker threads still running: {threads}")
        shutdown_worker_threads()  # so that one leak does not crash the whole session
    left = [w for w in QApplication.topLevelWidgets() if id(w) not in before and w.isVisible()]
    if left:
        problems.append(f"top-level widgets left open: {[type(w).__name__ for w in left]}")
    warnings = [r.message for r in qtlog.records
                if r.type in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg)
                and not any(b in r.message for b in _BENIGN)]
    if warnings:
        problems.append(f"Qt warnings: {warnings}")
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture(scope="session")
def demo_images(tmp_path_factory: pytest.TempPathFactory):
    """A small real image set: good references and a mixed folder with defects."""
    from inspector.datasets.synthetic import make_demo_images

    return make_demo_images(tmp_path_factory.mktemp("demo"), n_reference=12, n_good=6, n_defect=4,
                            image_size=96)


@pytest.fixture(scope="session")
def real_model_path(demo_images, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real InspectionModel fitted on the reference images and saved (once per session)."""
    from inspector.core.imageio import list_images, read_image
    from inspector.pipeline.model import InspectionModel

    images = [read_image(p) for p in list_images([demo_images.reference_dir]).images]
    model = InspectionModel.fit(images, detector="gaussian", backbone="lite0", image_size=96, folds=3)
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def real_model(real_model_path: Path):
    """The real model, loaded once (tests must not change it)."""
    from inspector.pipeline.model import InspectionModel

    return InspectionModel.load(real_model_path)


@pytest.fixture
def make_window(qtbot, tmp_path: Path):
    """Build the station window with an injected station; closed (threads stopped) after the test."""
    from inspector.gui.main_window import MainWindow
    from inspector.storage.settings import load_settings, save_settings
    from inspector.workers.station import Station
    from inspector.workers.store_holder import StoreHolder

    def build(source_factory=None, settings=None, segmentation_mode: str = "fast"):
        settings = settings or load_settings()[0]
        station = Station(StoreHolder(tmp_path / "data" / "results.sqlite3"), source_factory=source_factory,
                          segmentation_mode=segmentation_mode)
        window = MainWindow(station, settings, save_settings=save_settings)
        qtbot.addWidget(window)
        window.show()
        return window

    return build


def gray(level: int, shape=(40, 48)) -> np.ndarray:
    """A solid gray RGB image."""
    return np.full((*shape, 3), level, dtype=np.uint8)
