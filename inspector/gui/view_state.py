"""What the window remembers beside the station's settings: the batch review's last folder.

Kept in ``view_state.json`` in the settings folder (:func:`inspector.core.paths.config_dir`,
``$INSPECTOR_CONFIG_DIR`` when set) and written atomically when the window saves its
settings (on close). As forgiving as the settings file: a missing, broken or newer file
gives the defaults with a logged warning and never stops the window from opening;
unknown keys are ignored.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from inspector.core.durable import write_atomically
from inspector.core.paths import config_dir

logger = logging.getLogger(__name__)

VIEW_STATE_FILENAME = "view_state.json"
VIEW_STATE_VERSION = 1


@dataclass
class ViewState:
    """The window's own memory.

    Attributes:
        version: Format version of the file.
        batch_folder: The folder the batch review last showed (absolute), or ``None``.
    """

    version: int = VIEW_STATE_VERSION
    batch_folder: str | None = None


def view_state_path() -> Path:
    """``view_state.json`` in the settings folder."""
    return Path(config_dir()) / VIEW_STATE_FILENAME


def load_view_state(path: Path | None = None) -> ViewState:
    """Read the view state; the defaults (and a logged warning) when the file is missing or unusable."""
    path = Path(path) if path is not None else view_state_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ViewState()
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        logger.warning("ignoring %s: %s", path, exc)
        return ViewState()
    if not isinstance(data, dict) or not isinstance(data.get("version", VIEW_STATE_VERSION), int) \
            or data.get("version", VIEW_STATE_VERSION) > VIEW_STATE_VERSION:
        logger.warning("ignoring %s: not a view state this version of Inspector can read", path)
        return ViewState()
    folder = data.get("batch_folder")
    if folder is not None and (not isinstance(folder, str) or not folder):
        logger.warning("%s: batch_folder must be a folder path; dropped", path)
        folder = None
    return ViewState(batch_folder=folder)


def save_view_state(state: ViewState, path: Path | None = None) -> None:
    """Write ``state`` atomically (a temporary file in the same folder, then ``os.replace``)."""
    path = Path(path) if path is not None else view_state_path()
    write_atomically(path, (json.dumps(asdict(state), indent=2) + "\n").encode("utf-8"))


def remember_batch_folder(state: ViewState, folder: str) -> None:
    """Keep ``folder`` (made absolute) as the batch review's folder; an empty one keeps the last."""
    if folder:
        state.batch_folder = os.path.abspath(os.path.expanduser(folder))


def restored_batch_folder(state: ViewState) -> str:
    """The remembered batch folder when it still exists, else ""."""
    folder = state.batch_folder
    return folder if folder and os.path.isdir(folder) else ""
