"""The registry of frame-source kinds, keyed by the spec prefix (``camera`` in ``camera:0``).

Each source module registers the kinds it implements with :func:`register_source`;
:func:`source_kinds` finds them by importing every module of ``inspector.sources``,
so a new source is one new file. The spec parser, the CLI help and the GUI's
source picker are all derived from these entries.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from inspector.core.plugins import import_submodules
from inspector.sources.base import FrameSource


@dataclass(frozen=True)
class SourceKind:
    """One kind of frame source.

    Attributes:
        name: The spec prefix, e.g. ``"camera"``.
        label: What the GUI's picker shows, e.g. ``"Camera"``.
        value: What follows the colon, for messages and help (``"camera index"``, ``"PATH"``, ``"URL"``).
        example: A spec for help texts, e.g. ``"camera:0"``.
        placeholder: The GUI's hint for the value field.
        browse: What the GUI's Browse button picks: ``"file"``, ``"folder"`` or ``None``.
        build: ``build(value, spec, options)``: the unopened source for the text after the
            colon (``spec`` is the whole spec, for messages) and the constructor options;
            raises ``ValueError`` for a bad value.
        order: Position in lists (lower first).
    """

    name: str
    label: str
    value: str
    example: str
    placeholder: str
    browse: str | None
    build: Callable[[str, str, dict[str, Any]], FrameSource]
    order: int = 100


_KINDS: dict[str, SourceKind] = {}
_discovered = False


def register_source(kind: SourceKind) -> SourceKind:
    """Make ``kind`` available under its spec prefix.

    Raises:
        ValueError: for a prefix with a colon or one another entry holds.
    """
    if not kind.name or ":" in kind.name:
        raise ValueError(f"bad source kind name {kind.name!r}")
    other = _KINDS.get(kind.name)
    if other is not None and other.build.__qualname__ != kind.build.__qualname__:
        raise ValueError(f"source kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def discover_sources() -> None:
    """Import every module of ``inspector.sources`` once, so each registers its kinds."""
    global _discovered
    if _discovered:
        return
    import_submodules(__package__)
    _discovered = True


def source_kinds() -> tuple[SourceKind, ...]:
    """All registered source kinds, by ``order`` then name."""
    discover_sources()
    return tuple(sorted(_KINDS.values(), key=lambda kind: (kind.order, kind.name)))


def source_kind(name: str) -> SourceKind | None:
    """The kind registered under the spec prefix ``name``, or ``None``."""
    discover_sources()
    return _KINDS.get(name)


def spec_examples() -> str:
    """``camera:0 | video:PATH | ...``, for help texts."""
    return " | ".join(kind.example for kind in source_kinds())


def folder_and_options(rest: str, allowed: dict[str, str], spec: str, kind: str) -> tuple[str, dict[str, Any]]:
    """:func:`split_options` for sources that watch a folder: the path must be an existing folder.

    Raises:
        ValueError: naming ``kind`` when the path is not an existing folder, or for a bad option.
    """
    raw_path, options = split_options(rest, allowed, spec)
    path = os.path.expanduser(raw_path)
    if not os.path.isdir(path):
        raise ValueError(f"{kind} {path!r} is not an existing folder")
    return path, options


def split_options(rest: str, allowed: dict[str, str], spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``PATH?key=value&...`` into the path and constructor keyword arguments.

    Args:
        rest: The text after the colon.
        allowed: Spec option name -> constructor argument name; ``poll_interval`` takes
            seconds, every other one a flag (1/0, true/false, yes/no, on/off).
        spec: The whole spec, for messages.
    """
    path, sep, query = rest.rpartition("?")
    if not sep:
        return rest, {}
    if not path:
        raise ValueError(f"source spec {spec!r} is missing its path before '?'")
    options: dict[str, Any] = {}
    for item in query.split("&"):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if key not in allowed:
            raise ValueError(
                f"unknown option {key!r} in {spec!r}; allowed: {', '.join(sorted(allowed))}"
            )
        name = allowed[key]
        if name == "poll_interval":
            try:
                seconds = float(value)
            except ValueError:
                raise ValueError(f"option poll in {spec!r} must be a number of seconds") from None
            if not seconds > 0:
                raise ValueError(f"option poll in {spec!r} must be positive")
            options[name] = seconds
        else:
            options[name] = _parse_flag(value if eq else "1", key, spec)
    return path, options


def _parse_flag(value: str, key: str, spec: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"option {key} in {spec!r} must be 1 or 0, got {value!r}")
