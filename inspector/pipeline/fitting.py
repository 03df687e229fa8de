"""Fitting a model: a detector fitted on good images, calibrated on its held-out scores."""

from __future__ import annotations

import datetime as dt
import platform
import time
from typing import Sequence

import numpy as np
import torch

import inspector
from inspector.calibration.policies import Calibration, calibrate
from inspector.core.imageio import image_digest
from inspector.core.progress import Progress, silent
from inspector.detectors.base import Detector, detector_class, pick_device, resolve_folds


def fit_parts(images: Sequence[np.ndarray], *, detector: str, backbone: str, weights: str | None,
              image_size: int | None, folds: int | None, bad_images: Sequence[np.ndarray] | None,
              policy: str | None, target: float | None, progress: Progress | None,
              device: torch.device | str | None, mask: np.ndarray | None = None,
              reference_dir: str | None = None, **options) -> tuple[Detector, Calibration, dict, dict, object]:
    """Fit a detector and calibrate it; returns ``(detector, calibration, pixel_calibration, info, regions)``.

    With ``mask`` (a mask picture, white inspected), the references, the bad images
    and everything scored later go through the same
    :class:`~inspector.detectors.regions.RegionMask` (``regions``; else ``None``).
    See :meth:`inspector.pipeline.model.InspectionModel.fit` for the arguments.
    """
    progress = progress or silent()
    started = time.perf_counter()
    digests = [image_digest(image) for image in images]
    check_distinct(digests)
    cls_ = detector_class(detector)
    # What the caller asked for, before the fit fills in defaults: a refit with feedback asks again.
    requested = fit_request(options, folds=folds, policy=policy, target=target)
    if cls_.uses_backbone:
        options.update(backbone=backbone, weights=weights, image_size=image_size)
    elif image_size:
        options["image_size"] = image_size
    try:
        det = cls_(device=pick_device(device), **options)
    except TypeError as exc:
        raise ValueError(f"invalid option for the {detector} detector: {exc}") from exc
    # Cheap refits (backbone detectors): leave-one-out for small sets; trained detectors hold out 1/k.
    folds = resolve_folds(len(images), folds) if cls_.uses_backbone else (folds or 5)
    regions = None
    if mask is not None:
        from inspector.detectors.regions import RegionMask, mask_from_image

        resize = det.preprocessing.resize_image
        regions = RegionMask.fitted(mask_from_image(mask, det.preprocessing.image_size), images, resize)
        images = regions.apply(images, resize)
        bad_images = regions.apply(bad_images, resize) if bad_images else bad_images
    try:
        result = det.fit(images, progress, folds=folds)
    except np.linalg.LinAlgError as exc:
        raise ValueError(f"the reference images are too alike to fit a model ({len(set(digests))} distinct "
                         f"of {len(images)}; {exc}): use more varied good images") from exc
    bad_scores = det.score(bad_images) if bad_images else np.array([])
    chosen = policy or ("f1" if len(bad_scores) else "frr")
    calibration = calibrate(result.held_out_scores, bad_scores, policy=chosen, target=target)
    pixel = {}
    if result.held_out_maps is not None:
        from inspector.segmentation.pixel_calibration import fit_pixel_calibration

        pixel["fast"] = fit_pixel_calibration(result.held_out_maps)
    gradient_info = {}
    if det.supports_gradient:
        from inspector.segmentation.calibrate_gradient import calibrate_gradient

        progress.update(0, 1, "calibrating gradient maps")
        gradient_info, pixel["gradient"] = calibrate_gradient(det, images, pixel.get("fast"))
    info = {
        "n_reference": len(images),
        "folds": folds,
        "fit_seconds": round(time.perf_counter() - started, 3),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "software_version": inspector.__version__,
        "torch_version": torch.__version__,
        "fitted_on": f"{det.device.type} ({platform.machine()})",
        # What ran the backbone over the references (inspector.backbones.onnx_extraction).
        "fit_extraction": getattr(det, "extraction_engine", None) or "torch",
        "fit_request": requested,
        **gradient_info,
        # Lets `calibrate` reuse the unbiased held-out score of a reference image it is given again.
        "reference_held_out": {digest: float(score) for digest, score in zip(digests, result.held_out_scores)},
    }
    if reference_dir:
        # A refit with operator feedback starts again from these references.
        info["reference_dir"] = str(reference_dir)
    if len(set(digests)) < len(digests):
        info["duplicate_references"] = len(digests) - len(set(digests))
    return det, calibration, pixel, info, regions


def fit_request(options: dict, *, folds: int | None, policy: str | None, target: float | None) -> dict:
    """The detector options and calibration choices a fit was asked for, as stored in ``info["fit_request"]``.

    Only the caller's own choices are kept (the detector's defaults are not written
    out), so that a refit with feedback reproduces the same fit on more images.
    Backbone, weights file name and input size are stored elsewhere in the model.
    Values that JSON cannot hold are left out.
    """
    import json

    kept = {}
    for key, value in options.items():
        if key in ("backbone", "weights", "image_size"):
            continue
        value = list(value) if isinstance(value, tuple) else value
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        kept[key] = value
    return {"options": kept, "folds": folds, "policy": policy, "target": target}


def check_distinct(digests: Sequence[str]) -> None:
    """Refuse reference sets whose images are all the same picture.

    Args:
        digests: :func:`inspector.core.imageio.image_digest` of each reference image.

    Raises:
        ValueError: when there are two or more images and all have the same pixels
            (no variation to learn; the covariance would be singular).
    """
    if len(digests) > 1 and len(set(digests)) == 1:
        raise ValueError(f"the {len(digests)} reference images are identical (the same pixels): a model "
                         "learns how good parts vary, so it needs different images of good parts")


def duplicate_warning(info: dict) -> str | None:
    """The warning for reference images that are exact copies of others, or ``None``."""
    count = info.get("duplicate_references")
    if not count:
        return None
    return (f"{count} of the {info.get('n_reference')} reference images are exact copies of others: a copy's "
            "held-out score is not held out (its twin was fitted), so the threshold is less trustworthy; "
            "remove the copies")
