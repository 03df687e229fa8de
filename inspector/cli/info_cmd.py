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
        "calibration": {
            "threshold": cal.threshold, "policy": cal.policy, "target": cal.target,
            "expected_frr": frr.rate, "expected_frr_interval": [frr.low, frr.high], "n_held_out": frr.total,
            "expected_escape": None if escape is None else escape.rate,
            "expected_escape_interval": None if escape is None else [escape.low, escape.high],
            "n_bad": len(cal.bad_scores), "confidence": 0.95, "warning": cal.warning,
        },
        "info": info,
    }


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
    info = data["info"]
    if "n_reference" in info:
        print(f"references:   {info['n_reference']} images, {info.get('folds')} folds, fitted {info.get('created')}"
              f" in {info.get('fit_seconds')} s")
    print_rates(model.calibration)
    return 0
