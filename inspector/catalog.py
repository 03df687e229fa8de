"""Names of the backbones and the default detector, importable without torch.

The detectors themselves are listed by their registry,
:func:`inspector.detectors.base.detector_kinds` / :func:`~inspector.detectors.base.detector_catalog`,
which finds every detector module of ``inspector.detectors``; no list of them is kept here.
"""

from __future__ import annotations

LITE_BACKBONES = ("lite0", "lite1", "lite2")
B_BACKBONES = tuple(f"b{i}" for i in range(8))
BACKBONES = LITE_BACKBONES + B_BACKBONES
"""``lite0``-``lite2`` ship their ImageNet weights; ``b0``-``b7`` need a user-provided weights file."""

DEFAULT_DETECTOR = "fusion"
"""The detector fitted when none is named (a policy; which detectors exist is the registry's business)."""
