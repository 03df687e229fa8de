"""The inspection model: a fitted detector, its calibration and its maps, as one object.

This is the facade the CLI, the workers and the GUI use. A model is immutable in
use: a new threshold gives a new :class:`InspectionModel` sharing the detector,
and a refit builds a new one.
"""

from __future__ import annotations

import datetime as dt
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

import inspector
from inspector.calibration.policies import Calibration, calibrate
from inspector.catalog import DEFAULT_DETECTOR
from inspector.core.imageio import image_digest
from inspector.core.policy import is_anomalous, normalize, validate_threshold
from inspector.core.progress import Progress, silent
from inspector.core.records import Frame, Heatmap, InspectionResult
from inspector.detectors.base import Detector, detector_class, pick_device, resolve_folds
from inspector.storage.model_file import ModelFileError, load_model_file, save_model_file

SEGMENTERS = ("fast", "gradient")


class InspectionModel:
    """A fitted detector with its calibration.

    Build one with :meth:`fit` or :meth:`load`; see the Architecture section of README.md.
    """

    def __init__(self, detector: Detector, calibration: Calibration, pixel_calibration: dict | None = None,
                 info: dict | None = None, model_hash: str | None = None) -> None:
        self.detector = detector
        self.calibration = calibration
        self.pixel_calibration = dict(pixel_calibration or {})
        self.info = dict(info or {})
        self._hash = model_hash or self._content_hash()

    # ---- identity --------------------------------------------------------------------------
    @property
    def detector_kind(self) -> str:
        """The detector's registered name."""
        return self.detector.kind

    @property
    def backbone(self) -> str | None:
        """Name of the pretrained backbone, if the detector uses one."""
        return self.detector.backbone_name

    @property
    def device(self) -> torch.device:
        """Where the detector runs."""
        return self.detector.device

    @property
    def threshold(self) -> float:
        """The raw image threshold."""
        return self.calibration.threshold

    @property
    def model_hash(self) -> str:
        """Content hash of the model: the one its saved file carries (computed when built)."""
        return self._hash

    def _content_hash(self) -> str:
        from inspector.storage.model_file import FORMAT_VERSION, MAGIC, content_hash

        # Stamped like save_model_file stamps it, so saving does not change the hash.
        stamped = dict(self._metadata(), magic=MAGIC, format_version=FORMAT_VERSION)
        return content_hash(stamped, self.detector.tensors())

    @property
    def supported_segmenters(self) -> tuple[str, ...]:
        """Map methods this model can produce."""
        methods = ["fast"] if self.detector.has_maps else []
        if type(self.detector).differentiable_score is not Detector.differentiable_score:
            methods.append("gradient")
        return tuple(methods)

    def with_calibration(self, calibration: Calibration) -> "InspectionModel":
        """A model sharing this detector, deciding with another calibration."""
        return InspectionModel(self.detector, calibration, self.pixel_calibration, self.info)

    def with_threshold(self, threshold: float) -> "InspectionModel":
        """A model sharing this detector, with a manual raw threshold."""
        return self.with_calibration(self.calibration.with_threshold(threshold))

    # ---- building ------------------------------------------------------------------------
    @classmethod
    def fit(cls, images: Sequence[np.ndarray], *, detector: str = DEFAULT_DETECTOR, backbone: str = "lite0",
            weights: str | None = None, image_size: int | None = None, folds: int | None = None,
            bad_images: Sequence[np.ndarray] | None = None, policy: str | None = None,
            target: float | None = None, progress: Progress | None = None,
            device: torch.device | str | None = None, **options) -> "InspectionModel":
        """Fit a detector on good images and calibrate it on held-out scores.

        Args:
            images: Good RGB uint8 reference images.
            detector: Registered detector kind.
            backbone, weights, image_size: Backbone choice (for backbone-based detectors).
            folds: k for the k-fold held-out scores (default: leave-one-out up to 40 images, else 10).
            bad_images: Optional known-bad images; with them the default policy is best F1.
            policy, target: Threshold policy (default: 1% false-reject rate).
            progress: Progress sink (cancellable).
            device: Torch device; CUDA when available by default.
            **options: Passed to the detector's constructor.
        """
        progress = progress or silent()
        started = time.perf_counter()
        cls_ = detector_class(detector)
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
        result = det.fit(images, progress, folds=folds)
        bad_scores = det.score(bad_images) if bad_images else np.array([])
        chosen = policy or ("f1" if len(bad_scores) else "frr")
        calibration = calibrate(result.held_out_scores, bad_scores, policy=chosen, target=target)
        pixel = {}
        if result.held_out_maps is not None:
            from inspector.segmentation.pixel_calibration import fit_pixel_calibration

            pixel["fast"] = fit_pixel_calibration(result.held_out_maps)
        gradient_info = {}
        if type(det).differentiable_score is not Detector.differentiable_score:
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
            **gradient_info,
            # Lets `calibrate` reuse the unbiased held-out score of a reference image it is given again.
            "reference_held_out": {image_digest(image): float(score)
                                   for image, score in zip(images, result.held_out_scores)},
        }
        return cls(det, calibration, pixel, info)

    # ---- files -----------------------------------------------------------------------------
    def _metadata(self) -> dict:
        return {
            "detector": self.detector.kind,
            "detector_config": self.detector.config(),
            "backbone": self.detector.backbone_name,
            "backbone_weights_sha256": self.detector.backbone_sha256,
            "preprocessing": self.detector.preprocessing.to_dict(),
            "calibration": self.calibration.to_dict(),
            "pixel_calibration": {k: v.to_dict() for k, v in self.pixel_calibration.items()},
            "info": self.info,
        }

    def save(self, path: str | Path) -> str:
        """Write the model file; returns the model hash."""
        self._hash = save_model_file(path, self._metadata(), self.detector.tensors())
        return self._hash

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str | None = None,
             weights: str | None = None) -> "InspectionModel":
        """Load a model file and check that the backbone it was built for is installed.

        Raises:
            ModelFileError: unreadable file, unknown detector, or a backbone that is
                missing or has other weights than the model was fitted with.
        """
        contents = load_model_file(path)
        meta = contents.metadata
        device = pick_device(device)
        try:
            cls_ = detector_class(meta["detector"])
        except ValueError as exc:
            raise ModelFileError(f"{path}: {exc}") from exc
        try:
            kwargs = {"weights": weights} if meta.get("backbone") else {}
            detector = cls_.from_state(meta["detector_config"], contents.tensors, device, **kwargs)
        except ModelFileError:
            raise
        except (KeyError, ValueError, RuntimeError) as exc:
            raise ModelFileError(f"{path}: cannot rebuild the {meta['detector']} detector: {exc}") from exc
        wanted = meta.get("backbone_weights_sha256")
        if wanted and detector.backbone_sha256 != wanted:
            raise ModelFileError(
                f"{path}: fitted with {meta.get('backbone')} weights {wanted[:12]}..., but the installed "
                f"weights are {str(detector.backbone_sha256)[:12]}...; refit the model or install the weights "
                "it was built with"
            )
        pixel = {}
        if meta.get("pixel_calibration"):
            from inspector.segmentation.pixel_calibration import PixelCalibration

            pixel = {k: PixelCalibration.from_dict(v) for k, v in meta["pixel_calibration"].items()}
        return cls(detector, Calibration.from_dict(meta["calibration"]), pixel, meta.get("info", {}),
                   model_hash=meta["content_sha256"])

    # ---- decisions -------------------------------------------------------------------------
    def score_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Raw scores of RGB uint8 images."""
        return self.detector.score(images)

    def inspect(self, frames: Sequence[Frame], threshold: float | None = None) -> list[InspectionResult]:
        """Score frames and decide each against ``threshold`` (the calibrated one by default)."""
        if not frames:
            return []
        limit = validate_threshold(self.threshold if threshold is None else threshold)
        started = time.perf_counter()
        scores = self.score_images([frame.image for frame in frames])
        latency = (time.perf_counter() - started) * 1000.0 / len(frames)
        model_hash = self.model_hash
        return [
            InspectionResult(frame=frame, raw_score=float(raw), score=normalize(raw, limit), threshold=limit,
                             anomalous=is_anomalous(raw, limit), model_hash=model_hash, latency_ms=latency)
            for frame, raw in zip(frames, scores)
        ]

    def heatmaps(self, images: Sequence[np.ndarray], method: str = "fast",
                 progress: Progress | None = None) -> list[Heatmap]:
        """Anomaly maps in each image's own geometry, normalized with stored statistics."""
        from inspector.segmentation.maps import compute_heatmaps

        if method not in self.supported_segmenters:
            raise ValueError(f"this {self.detector_kind} model has no {method!r} map; "
                             f"available: {', '.join(self.supported_segmenters) or 'none'}")
        return compute_heatmaps(self, images, method, progress or silent())

    def __repr__(self) -> str:
        return (f"InspectionModel({self.detector_kind}, backbone={self.backbone}, "
                f"threshold={self.threshold:.4g}, hash={self.model_hash[:12]})")
