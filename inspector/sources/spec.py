"""Source specs: ``KIND:VALUE``, e.g. ``camera:0``, ``video:PATH``, ``folder:PATH?recursive=1``.

The kinds and how each builds its source come from :mod:`inspector.sources.registry`
(each source module registers its own); this module only splits the spec. It lives
apart from :mod:`inspector.sources.base` so that the protocol does not import its
implementations (which import the protocol).
"""

from __future__ import annotations

from typing import Any

from inspector.sources.base import FrameSource
from inspector.sources.registry import source_kind, source_kinds, spec_examples


def parse_source_spec(spec: str, **options: Any) -> FrameSource:
    """Build a source from a spec string.

    Specs (see :func:`~inspector.sources.registry.source_kinds`): ``camera:INDEX``,
    ``video:PATH``, ``stream:URL`` (rtsp, rtsps, rtmp, http, https), ``folder:PATH``
    and ``hotfolder:PATH``. Folder and hot-folder specs take options after ``?``:
    ``recursive=1`` (both), ``existing=1`` (hot folder: also read files already
    there) and ``poll=SECONDS``.

    Args:
        spec: The spec string, e.g. ``"folder:/data/lot7?recursive=1"``.
        **options: Keyword arguments for the source's constructor (for example
            ``recursive=True``, ``skip_paths=...``, ``capture_factory=...``);
            they override options given in the spec.

    Returns:
        An unopened :class:`FrameSource`.

    Raises:
        ValueError: for a malformed spec, an unknown kind or option, or a path
            that does not exist.
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"source spec {spec!r} has no kind; expected one of: {spec_examples()}")
    name, _, rest = spec.partition(":")
    name = name.strip().lower()
    rest = rest.strip()
    kind = source_kind(name)
    if kind is None:
        names = ", ".join(k.name for k in source_kinds())
        raise ValueError(f"unknown source kind {name!r} in {spec!r}; expected one of: {names}")
    if not rest:
        raise ValueError(f"source spec {spec!r} is missing its {kind.value}")
    return kind.build(rest, spec, options)
