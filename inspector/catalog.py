"""Names of the detectors and backbones, importable without torch (the GUI lists them at start-up)."""

from __future__ import annotations

LITE_BACKBONES = ("lite0", "lite1", "lite2")
B_BACKBONES = tuple(f"b{i}" for i in range(8))
BACKBONES = LITE_BACKBONES + B_BACKBONES
"""``lite0``-``lite2`` ship their ImageNet weights; ``b0``-``b7`` need a user-provided weights file."""

DETECTORS = ("fusion", "gaussian", "ae-l2", "ae-ssim", "vae", "anogan")
"""``fusion`` (the default) and ``gaussian`` need no training; the others train on the reference images."""

DEFAULT_DETECTOR = DETECTORS[0]

SEGMENTERS = ("fast", "gradient")
