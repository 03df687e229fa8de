"""Which maps a frame gets, from the station's segmentation mode and the model's capabilities.

The fast map is drawn in the inspection pass itself (``InspectionModel.inspect(maps="fast")``),
so it travels in the frame's record; the gradient map is a follow-up job for NG
frames, handed the frame and its fast map. No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass

SEGMENTATION_MODES: dict[str, str] = {
    "off": "Off",
    "fast": "Fast map on NG",
    "gradient": "Gradient map on NG",
    "fast+gradient": "Fast always + gradient on NG",
}


@dataclass(frozen=True)
class MapPlan:
    """What to draw for a frame.

    Attributes:
        inline: The map drawn in the inspection pass (``"fast"``) or ``None``.
        inline_on: ``"all"`` frames get the inline map, or only the ``"ng"`` ones.
        followup: The map computed afterwards for NG frames (``"gradient"``) or ``None``.
        note: Why the mode could not be followed as asked (empty when it could).
    """

    inline: str | None = None
    inline_on: str = "ng"
    followup: str | None = None
    note: str = ""


def plan_maps(mode: str, supported: tuple[str, ...] | list[str]) -> MapPlan:
    """The maps of ``mode`` that a model with ``supported`` segmenters can draw.

    A mode asking for a map the model lacks falls back to the other map, with a note.

    Raises:
        ValueError: for an unknown mode.
    """
    if mode not in SEGMENTATION_MODES:
        raise ValueError(f"unknown segmentation mode {mode!r}; choose one of {', '.join(SEGMENTATION_MODES)}")
    fast = "fast" in supported
    gradient = "gradient" in supported
    if mode == "off":
        return MapPlan()
    if mode == "fast+gradient":
        if not fast and not gradient:
            return MapPlan(note="this model has no maps")
        note = "" if fast and gradient else f"this model has no {'fast' if not fast else 'gradient'!r} map"
        return MapPlan("fast" if fast else None, "all", "gradient" if gradient else None, note)
    if mode == "fast":
        if fast:
            return MapPlan("fast", "ng")
        if gradient:
            return MapPlan(followup="gradient", note="this model has no 'fast' map; using 'gradient'")
        return MapPlan(note="this model has no 'fast' map; no maps")
    # "gradient": the NG frame's fast map (drawn in the same pass) weights the gradient's steps.
    if gradient:
        return MapPlan("fast" if fast else None, "ng", "gradient")
    if fast:
        return MapPlan("fast", "ng", note="this model has no 'gradient' map; using 'fast'")
    return MapPlan(note="this model has no 'gradient' map; no maps")
