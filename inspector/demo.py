"""The built-in demo: generated reference images, a fitted model and a folder to inspect.

``inspector`` with no arguments opens the station on it, so a fresh install shows
something meaningful at once. Everything is generated from the bundled textures
on first use and cached under the user data folder; later starts reuse it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path


from inspector.core import paths
from inspector.core.progress import Progress, silent

log = logging.getLogger(__name__)
DEMO_VERSION = 1


def demo_dir() -> Path:
    """Where the demo lives (``$INSPECTOR_DATA_DIR/demo`` if set; see :mod:`inspector.core.paths`)."""
    return paths.demo_dir()


def ensure_demo(progress: Progress | None = None) -> tuple[Path, str]:
    """Create the demo if it is missing; returns ``(model_path, source_spec)``.

    The first call generates 50 reference and 50 inspection images (10 with drawn
    defects) and fits the default Gaussian detector: about a minute on a 2-core CPU.
    """
    from inspector.core.imageio import read_images, list_images
    from inspector.pipeline.model import InspectionModel
    from inspector.datasets.synthetic import make_demo_images

    progress = progress or silent()
    folder = demo_dir()
    model_path = folder / "demo-model.safetensors"
    stamp = folder / "demo.json"
    source = f"folder:{folder / 'inspect'}"
    if model_path.is_file() and stamp.is_file():
        try:
            if json.loads(stamp.read_text()).get("version") == DEMO_VERSION:
                return model_path, source
        except (OSError, json.JSONDecodeError):
            pass
    log.info("building the demo in %s", folder)
    images = make_demo_images(folder, category="brick", image_size=224, progress=progress)
    references = read_images(list_images([images.reference_dir]).images, progress)
    # The reference folder is stored so that "refit with feedback" works on the demo too.
    model = InspectionModel.fit(references.images, progress=progress, reference_dir=str(images.reference_dir))
    model.save(model_path)
    stamp.write_text(json.dumps({"version": DEMO_VERSION, "model": model_path.name}))
    return model_path, source
