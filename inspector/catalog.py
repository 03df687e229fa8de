"""Names of the backbones and the default detector, importable without torch.

The backbones are listed by their registry, :mod:`inspector.backbones.catalog`.
The detectors themselves are listed by their registry,
:func:`inspector.detectors.base.detector_kinds` / :func:`~inspector.detectors.base.detector_catalog`,
which finds every detector module of ``inspector.detectors``; no list of them is kept here.
"""

from __future__ import annotations

from inspector.backbones.catalog import backbone_names

BACKBONES = backbone_names()
"""Every backbone name, from the backbone registry (:mod:`inspector.backbones.catalog`)."""

DEFAULT_DETECTOR = "fusion"
"""The detector fitted when none is named (a policy; which detectors exist is the registry's business)."""
