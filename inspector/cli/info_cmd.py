"""``inspector info``: what a model file holds, its calibration and the rates it promises."""

from __future__ import annotations

import json

from inspector.cli.common import load_model
from inspector.cli.rates import print_rates

HELP = "show a model file's detector, backbone, calibration and expected rates (with 95% intervals)"


def add_arguments(parser) -> None:
    """Arguments of ``inspector info``."""
    from inspector.cli.sign_cmd import add_trusted_key

    add_trusted_key(parser)
    parser.add_argument("model", metavar="MODEL")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def model_info(model) -> dict:
    """The model's metadata as a JSON-able dict (held-out scores summarized, not listed)."""
    cal = model.calibration
    frr, escape = cal.frr, cal.escape
    info = {k: v for k, v in model.info.items() if k != "reference_held_out"}
    return {
        "model_hash": model.model_hash,
        "detector": model.detector_kind,
        "backbone": model.backbone,
        "image_size": model.detector.preprocessing.image_size,
        "segmenters": list(model.supported_segmenters),
        "evidence": list(getattr(model.detector, "components", ()) or ()),
        "calibration": {
            "threshold": cal.threshold, "policy": cal.policy, "target": cal.target,
            "expected_frr": frr.rate, "expected_frr_interval": [frr.low, frr.high], "n_held_out": frr.total,
            "expected_escape": None if escape is None else escape.rate,
            "expected_escape_interval": None if escape is None else [escape.low, escape.high],
            "n_bad": len(cal.bad_scores), "confidence": 0.95, "warning": cal.warning,
        },
        "regions": regions_info(getattr(model, "regions", None)),
        "info": info,
    }


def regions_info(regions) -> dict:
    """What a model's region mask covers, as ``info`` shows it (``enabled: false`` without one).

    Fractions are of the model input square, which frames are stretched to, so they are
    the fractions of every frame. ``ignored_regions`` counts the separate ignored areas
    (8-connected); ``inspected_box`` is the inspected pixels' bounding box as fractions
    ``[x0, y0, x1, y1]`` of the frame's width and height.
    """
    if regions is None:
        return {"enabled": False, "inspected_fraction": 1.0, "ignored_fraction": 0.0}
    import cv2
    import numpy as np

    inspected = np.asarray(regions.inspected, dtype=bool)
    size = int(regions.size)
    ignored = (~inspected).astype(np.uint8)
    count = int(cv2.connectedComponents(ignored, connectivity=8)[0]) - 1 if ignored.any() else 0
    rows, cols = np.nonzero(inspected)
    box = [round(float(cols.min()) / size, 4), round(float(rows.min()) / size, 4),
           round(float(cols.max() + 1) / size, 4), round(float(rows.max() + 1) / size, 4)]
    return {
        "enabled": True,
        "mask_size": [size, size],
        "inspected_fraction": round(float(inspected.mean()), 4),
        "ignored_fraction": round(float(regions.ignored_fraction), 4),
        "ignored_pixels": int(ignored.sum()),
        "ignored_regions": count,
        "inspected_box": box,
    }


def describe_regions(regions: dict) -> str:
    """One line for the text output."""
    if not regions["enabled"]:
        return "none: the whole frame is inspected"
    size = "x".join(str(v) for v in regions["mask_size"])
    x0, y0, x1, y1 = (f"{v:.0%}" for v in regions["inspected_box"])
    plural = "s" if regions["ignored_regions"] != 1 else ""
    return (f"inspected {regions['inspected_fraction']:.1%} of the frame, ignored {regions['ignored_fraction']:.1%} "
            f"in {regions['ignored_regions']} region{plural}; mask {size} px (the model input, stretched to the "
            f"frame), inspected within x {x0}-{x1}, y {y0}-{y1}")


def run(args) -> int:
    """Print the model's metadata."""
    model = load_model(args.model, "cpu", args=args)
    data = model_info(model)
    if args.format == "json":
        print(json.dumps(data, indent=2))
        return 0
    print(f"model:        {args.model} (hash {model.model_hash[:16]})")
    print(f"detector:     {data['detector']}" + (f" on {data['backbone']}" if data["backbone"] else "")
          + f", input {data['image_size']} px, maps: {', '.join(data['segmenters']) or 'none'}")
    if data["evidence"]:
        print(f"evidence:     {', '.join(data['evidence'])} (fused)")
    info = data["info"]
    if "n_reference" in info:
        print(f"references:   {info['n_reference']} images, {info.get('folds')} folds, fitted {info.get('created')}"
              f" in {info.get('fit_seconds')} s")
    print(f"regions:      {describe_regions(data['regions'])}")
    print_rates(model.calibration)
    return 0
