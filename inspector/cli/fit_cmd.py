"""``inspector fit``: fit a detector on a folder of good images and save the model file."""

from __future__ import annotations

import os

from inspector.cli.common import add_device, add_quiet, load_folder, warn
from inspector.cli.progress_bar import progress_bar
from inspector.cli.rates import print_rates

HELP = "fit a detector on good reference images and write a calibrated model file"


def add_arguments(parser) -> None:
    """Arguments of ``inspector fit``."""
    from inspector.backbones.efficientnet import BACKBONE_NAMES
    from inspector.catalog import DEFAULT_DETECTOR
    from inspector.detectors.base import detector_catalog, detector_classes

    entries = detector_catalog()
    with_switch = [cls.kind for cls in detector_classes() if cls.has_fast_map_option()]

    parser.add_argument("ref_dir", metavar="REF_DIR", help="folder of good reference images (searched recursively)")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write (.safetensors)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=[e.kind for e in entries],
                        help="; ".join(f"{e.kind}{' (default)' if e.kind == DEFAULT_DETECTOR else ''}: {e.description}"
                                       for e in entries))
    parser.add_argument("--backbone", default="lite0", choices=BACKBONE_NAMES, help="EfficientNet variant (default lite0)")
    parser.add_argument("--weights", metavar="PATH", help="ImageNet weights file (required for b0..b7)")
    parser.add_argument("--image-size", type=int, metavar="N", help="network input size (default: the model's own)")
    parser.add_argument("--folds", type=int, default=None,
                        help="k for the held-out calibration scores (default: leave-one-out up to 40 images, else 10)")
    parser.add_argument("--bad", metavar="DIR", help="known-bad images: the threshold then maximizes F1")
    parser.add_argument("--frr", type=float, default=None, help="target false-reject rate (default 0.01)")
    parser.add_argument("--no-fast-map", action="store_true",
                        help=f"skip the patch-level map ({', '.join(with_switch) or 'no detector has the switch'})")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="detector option, repeatable (e.g. epochs=50, max_seconds=300, seed=1, levels=[4,5,6,7,8])")
    parser.add_argument("--mask", metavar="MASK.png",
                        help="inspection mask: white is inspected, black ignored (a label, a serial number); "
                             "stretched to the model input like the frames and stored in the model file")
    parser.add_argument("--force", action="store_true", help="replace MODEL even if it is a read-only file")
    add_device(parser)
    add_quiet(parser)


def parse_options(pairs: list[str]) -> dict:
    """``KEY=VALUE`` pairs as a dict; values are read as JSON when they parse, else kept as text.

    Raises:
        ValueError: for a pair without ``=``.
    """
    import json

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--option needs KEY=VALUE, got {pair!r}")
        try:
            options[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip().replace("-", "_")] = value
    return options


def run(args) -> int:
    """Fit, calibrate on held-out scores and save."""
    from inspector.detectors.base import detector_class
    from inspector.pipeline.fitting import duplicate_warning
    from inspector.pipeline.model import InspectionModel
    from inspector.storage.model_file import check_output_path

    if args.image_size is not None and not 32 <= args.image_size <= 1024:
        raise ValueError(f"--image-size must be between 32 and 1024, got {args.image_size}")
    options = parse_options(args.option)
    if args.no_fast_map:
        if not detector_class(args.detector).has_fast_map_option():
            raise ValueError(f"--no-fast-map: the {args.detector} detector's fast map cannot be switched off")
        options["fast_map"] = False
    # Before the fit, not after it: an unwritable output would lose the whole fit.
    check_output_path(args.output, overwrite_read_only=args.force)
    mask = _read_mask(args.mask) if args.mask else None
    with progress_bar(args.quiet, "fit") as progress:
        references = load_folder([args.ref_dir], progress, "reference")
        bad = load_folder([args.bad], progress, "bad").images if args.bad else None
        policy = "frr" if args.frr is not None else None
        model = InspectionModel.fit(
            references.images, detector=args.detector, backbone=args.backbone, weights=args.weights,
            image_size=args.image_size, folds=args.folds, bad_images=bad, policy=policy, target=args.frr,
            progress=progress, device=args.device, mask=mask, reference_dir=os.path.abspath(args.ref_dir),
            **options)
    model_hash = model.save(args.output, overwrite_read_only=args.force)
    cal = model.calibration
    size_mb = os.path.getsize(args.output) / 1e6
    print(f"model:        {args.output} ({size_mb:.1f} MB, hash {model_hash[:16]})")
    print(f"detector:     {model.detector_kind}" + (f" on {model.backbone}" if model.backbone else ""))
    print(f"references:   {len(references.images)} images, fitted in {model.info['fit_seconds']:.1f} s")
    if model.regions is not None:
        print(f"regions:      {args.mask}: {model.regions.ignored_fraction:.0%} of the image ignored")
    print_rates(cal)
    duplicates = duplicate_warning(model.info)
    if duplicates:
        warn(duplicates)
    if len(references.images) < 20:
        warn(f"only {len(references.images)} reference images; 20 or more give steadier thresholds")
    return 0


def _read_mask(path: str):
    """The mask picture, checked before the fit (unreadable or all black: exit 2)."""
    from inspector.core.imageio import read_image
    from inspector.detectors.regions import mask_from_image

    if not os.path.isfile(path):
        raise ValueError(f"--mask {path}: no such file")
    image = read_image(path)
    mask_from_image(image, 64)  # raises for a mask that inspects nothing
    return image
