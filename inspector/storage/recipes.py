"""Recipes: a named product's model file, threshold override, source and map mode. No Qt.

Each recipe is one versioned JSON file, ``<config_dir>/recipes/NAME.json``
(:func:`inspector.core.paths.config_dir`), written atomically. Model paths are
stored absolute, so a recipe works from any folder. ``inspector recipe``,
``inspector serve --recipe`` and (later) the window and ``score`` use
:func:`load_recipe`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from inspector.core.durable import write_atomically
from inspector.core.paths import config_dir

RECIPE_VERSION = 1
MAP_MODES = ("off", "fast", "gradient", "fast+gradient")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class RecipeError(ValueError):
    """A recipe that does not exist, has a bad name, or cannot be read."""


@dataclass(frozen=True)
class Recipe:
    """One product.

    Attributes:
        name: Letters, digits, ``_``, ``-``, ``.``; at most 64 characters.
        model: Absolute path of the model file.
        threshold: Raw threshold override (``None``: the model's calibrated one).
        source: Source spec (``folder:PATH``, ``camera:0``, ...), if the recipe names one.
        maps: Segmentation mode (one of :data:`MAP_MODES`), if the recipe sets one.
    """

    name: str
    model: str
    threshold: float | None = None
    source: str | None = None
    maps: str | None = None

    def to_json(self) -> str:
        """The file's text (with the format version)."""
        return json.dumps({"version": RECIPE_VERSION, **asdict(self)}, indent=2) + "\n"


def recipes_dir() -> Path:
    """Where recipes live."""
    return config_dir() / "recipes"


def check_name(name: str) -> str:
    """``name`` if it is a valid recipe name; :class:`RecipeError` otherwise."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise RecipeError(f"recipe name {name!r}: use letters, digits, '_', '-', '.' (at most 64, "
                          "not starting with '.' or '-')")
    return name


def make_recipe(name: str, model: str, threshold: float | None = None, source: str | None = None,
                maps: str | None = None) -> Recipe:
    """A checked recipe with the model path made absolute.

    Raises:
        RecipeError: for a bad name, a missing model file, a threshold that is not positive and
            finite, or an unknown map mode.
    """
    check_name(name)
    path = os.path.abspath(os.path.expanduser(model))
    if not os.path.isfile(path):
        raise RecipeError(f"recipe {name}: model file {path} does not exist")
    if threshold is not None:
        threshold = float(threshold)
        if not threshold > 0 or threshold == float("inf"):
            raise RecipeError(f"recipe {name}: the threshold must be a positive number, not {threshold}")
    if maps is not None and maps not in MAP_MODES:
        raise RecipeError(f"recipe {name}: map mode {maps!r} is not one of {', '.join(MAP_MODES)}")
    return Recipe(name, path, threshold, source or None, maps)


def save_recipe(recipe: Recipe) -> Path:
    """Write ``recipe`` (replacing one of the same name) atomically; returns its file."""
    folder = recipes_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{check_name(recipe.name)}.json"
    write_atomically(path, recipe.to_json().encode("utf-8"))
    return path


def load_recipe(name: str) -> Recipe:
    """The recipe called ``name``.

    Raises:
        RecipeError: if there is none, or its file is unreadable, of another version or incomplete.
    """
    path = recipes_dir() / f"{check_name(name)}.json"
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = ", ".join(list_recipes()) or "none"
        raise RecipeError(f"no recipe {name!r} (known: {known})") from None
    except (OSError, ValueError) as exc:
        raise RecipeError(f"recipe {name}: {path} cannot be read: {exc}") from exc
    if not isinstance(values, dict) or values.get("version") != RECIPE_VERSION:
        raise RecipeError(f"recipe {name}: {path} is not a recipe of version {RECIPE_VERSION}")
    try:
        threshold = values.get("threshold")
        return Recipe(str(values["name"]), str(values["model"]),
                      None if threshold is None else float(threshold),
                      values.get("source") or None, values.get("maps") or None)
    except (KeyError, TypeError, ValueError) as exc:
        raise RecipeError(f"recipe {name}: {path} is incomplete: {exc}") from exc


def list_recipes() -> list[str]:
    """Names of the stored recipes, sorted."""
    folder = recipes_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if _NAME.match(p.stem))


def remove_recipe(name: str) -> Path:
    """Delete the recipe ``name``; returns the removed file.

    Raises:
        RecipeError: if there is none.
    """
    path = recipes_dir() / f"{check_name(name)}.json"
    try:
        path.unlink()
    except FileNotFoundError:
        raise RecipeError(f"no recipe {name!r}") from None
    return path
