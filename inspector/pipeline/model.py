"""The inspection model: a fitted detector, its calibration and its maps, as one object.

This is the facade the CLI, the workers and the GUI use. A model is immutable in
use: a new calibration gives a new :class:`InspectionModel` sharing the detector,
and a refit builds a new one. :meth:`InspectionModel.inspect` turns frames into
one complete :class:`InspectionResult` each (scores, verdict, the threshold it
was decided with, the model hash and, when asked, the fast map) from one pass.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from inspector.calibration.policies import Calibration
from inspector.catalog import DEFAULT_DETECTOR
from inspector.core.policy import Threshold
from inspector.core.progress import Progress, silent
from inspector.core.records import Frame, Heatmap, InspectionResult
from inspector.detectors.base import Detector, detector_class, pick_device
from inspector.detectors.regions import RegionMask, split_tensors
from inspector.pipeline.maps import gradient_raw_maps, supported_segmenters, to_heatmaps
from inspector.storage.model_file import ModelFileError, load_model_file, save_model_file

MAP_CHOICES = (None, "fast")
"""What :meth:`InspectionModel.inspect` can draw in the scoring pass."""
MAPS_ON = ("all", "ng")


class InspectionModel:
    """A fitted detector with its calibration.

    Build one with :meth:`fit` or :meth:`load`; see the Architecture section of README.md.
    """

    def __init__(self, detector: Detector, calibration: Calibration, pixel_calibration: dict | None = None,
                 info: dict | None = None, model_hash: str | None = None, regions: RegionMask | None = None) -> None:
        self.detector = detector
        self.regions = regions
        self.calibration = calibration
        self.pixel_calibration = dict(pixel_calibration or {})
        self.info = dict(info or {})
        self.decision = Threshold(calibration.threshold)
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
        """The calibrated raw image threshold (``self.decision.raw``)."""
        return self.decision.raw

    @property
    def model_hash(self) -> str:
        """Content hash of the model: the one its saved file carries (computed when built)."""
        return self._hash

    def _content_hash(self) -> str:
        from inspector.storage.model_file import FORMAT_VERSION, MAGIC, content_hash

        # Stamped like save_model_file stamps it, so saving does not change the hash.
        stamped = dict(self._metadata(), magic=MAGIC, format_version=FORMAT_VERSION)
        return content_hash(stamped, self._tensors())

    def _tensors(self) -> dict[str, torch.Tensor]:
        tensors = dict(self.detector.tensors())
        if self.regions is not None:
            tensors.update(self.regions.tensors())
        return tensors

    def _model_view(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The images as the detector is given them: with the ignored regions filled (if any)."""
        if self.regions is None:
            return list(images)
        return self.regions.apply(images, self.detector.preprocessing.resize_image)

    @property
    def supported_segmenters(self) -> tuple[str, ...]:
        """Map methods this model can produce, from the detector's capabilities."""
        return supported_segmenters(self.detector)

    def with_calibration(self, calibration: Calibration) -> "InspectionModel":
        """A model sharing this detector, deciding with another calibration."""
        return InspectionModel(self.detector, calibration, self.pixel_calibration, self.info, regions=self.regions)

    # ---- building and files ----------------------------------------------------------------
    @classmethod
    def fit(cls, images: Sequence[np.ndarray], *, detector: str = DEFAULT_DETECTOR, backbone: str = "lite0",
            weights: str | None = None, image_size: int | None = None, folds: int | None = None,
            bad_images: Sequence[np.ndarray] | None = None, policy: str | None = None,
            target: float | None = None, progress: Progress | None = None,
            device: torch.device | str | None = None, mask: np.ndarray | None = None,
            reference_dir: str | None = None, **options) -> "InspectionModel":
        """Fit a detector on good images and calibrate it on held-out scores.

        Args:
            images: Good RGB uint8 reference images.
            detector: Registered detector kind.
            backbone, weights, image_size: Backbone choice (for detectors that use a backbone).
            folds: k for the k-fold held-out scores (default: leave-one-out up to 40 images, else 10).
            bad_images: Optional known-bad images; with them the default policy is best F1.
            policy, target: Threshold policy (default: 1% false-reject rate).
            progress: Progress sink (cancellable).
            device: Torch device; CUDA when available by default.
            mask: Optional mask picture (white inspected, black ignored), stretched to the
                input size; stored in the model and applied to every frame (see
                :mod:`inspector.detectors.regions`).
            reference_dir: The reference folder, stored so that a refit with operator
                feedback can start from it again.
            **options: Passed to the detector's constructor.
        """
        from inspector.pipeline.fitting import fit_parts

        parts = fit_parts(images, detector=detector, backbone=backbone, weights=weights, image_size=image_size,
                          folds=folds, bad_images=bad_images, policy=policy, target=target, progress=progress,
                          device=device, mask=mask, reference_dir=reference_dir, **options)
        detector_, calibration, pixel, info, regions = parts
        return cls(detector_, calibration, pixel, info, regions=regions)

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
            **({"regions": self.regions.metadata()} if self.regions is not None else {}),
        }

    def save(self, path: str | Path, overwrite_read_only: bool = False) -> str:
        """Write the model file atomically; returns the model hash.

        Raises:
            inspector.storage.model_file.OutputPathError: the file cannot be written there
                (a folder, an unwritable folder, or a read-only file without ``overwrite_read_only``).
        """
        self._hash = save_model_file(path, self._metadata(), self._tensors(),
                                     overwrite_read_only=overwrite_read_only)
        return self._hash

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str | None = None,
             weights: str | None = None, trust=None) -> "InspectionModel":
        """Load a model file and check that the backbone it was built for is installed.

        Args:
            path: The model file.
            device: Torch device; CUDA when available by default.
            weights: Backbone weights file (B0-B7).
            trust: A :class:`inspector.storage.signing.TrustPolicy`; ``None`` means the
                policy of the settings and environment
                (:func:`inspector.storage.signing.default_trust_policy`), so that a station
                or command that requires signed models cannot forget to check.

        Raises:
            ModelFileError: unreadable file, unknown detector, a backbone that is
                missing or has other weights than the model was fitted with, or a
                signature refused by the trust policy.
        """
        if trust is None:
            from inspector.storage.signing import default_trust_policy

            trust = default_trust_policy()
        contents = load_model_file(path, trust=trust if trust.active else None)
        meta = contents.metadata
        device = pick_device(device)
        own, region_tensors = split_tensors(contents.tensors)
        regions = RegionMask.from_tensors(region_tensors) if meta.get("regions") else None
        try:
            cls_ = detector_class(meta["detector"])
        except ValueError as exc:
            raise ModelFileError(f"{path}: {exc}") from exc
        try:
            kwargs = {"weights": weights} if cls_.uses_backbone else {}
            detector = cls_.from_state(meta["detector_config"], own, device, **kwargs)
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
                   model_hash=meta["content_sha256"], regions=regions)

    # ---- decisions -------------------------------------------------------------------------
    def score_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Raw scores of RGB uint8 images (no maps)."""
        return self.detector.score(self._model_view(images))

    def inspect(self, frames: Sequence[Frame], maps: str | None = None, threshold: Threshold | float | None = None,
                maps_on: str = "all") -> list[InspectionResult]:
        """Decide frames: one complete record per frame from one backbone pass.

        Args:
            frames: The frames.
            maps: ``"fast"`` to draw the fast map in the same pass as the score
                (see :attr:`supported_segmenters`), ``None`` for scores only.
            threshold: Decide with this threshold instead of the calibrated one.
            maps_on: ``"all"`` frames get their map, or only the ``"ng"`` ones.

        Returns:
            One :class:`InspectionResult` per frame, in order; ``heatmap`` is set
            where a map was asked for.

        Raises:
            ValueError: for a map this model cannot draw or an unknown ``maps_on``.
            inspector.core.policy.ThresholdError: for an unusable ``threshold``.
        """
        if maps not in MAP_CHOICES or maps_on not in MAPS_ON:
            raise ValueError(f"maps must be one of {MAP_CHOICES} and maps_on one of {MAPS_ON}")
        if maps is not None and maps not in self.supported_segmenters:
            raise ValueError(self._no_map_message(maps))
        if not frames:
            return []
        rule = self.decision if threshold is None else Threshold.of(threshold)
        originals = [frame.image for frame in frames]
        started = time.perf_counter()
        images = self._model_view(originals)
        if maps is None:
            scores, heatmaps = self.detector.score(images), [None] * len(frames)
        else:
            scores, raw = self.detector.score_and_maps(images)
            flagged = rule.decide_many(scores) if maps_on == "ng" else np.ones(len(frames), dtype=bool)
            wanted = np.flatnonzero(flagged)
            drawn = to_heatmaps([originals[i] for i in wanted], raw[wanted], maps, self.pixel_calibration.get(maps),
                                self.regions)
            heatmaps = [None] * len(frames)
            for index, heatmap in zip(wanted, drawn):
                heatmaps[index] = heatmap
        latency = (time.perf_counter() - started) * 1000.0 / len(frames)
        return [
            InspectionResult(frame=frame, raw_score=float(raw_score), score=rule.normalize(raw_score),
                             threshold=rule.raw, anomalous=rule.decide(raw_score), model_hash=self._hash,
                             latency_ms=latency, heatmap=heatmap)
            for frame, raw_score, heatmap in zip(frames, scores, heatmaps)
        ]

    def heatmaps(self, images: Sequence[np.ndarray], method: str = "fast", progress: Progress | None = None,
                 fast: Sequence[Heatmap] | None = None) -> list[Heatmap]:
        """Anomaly maps in each image's own geometry, normalized with stored statistics.

        Args:
            images: RGB uint8 frames.
            method: ``"fast"`` or ``"gradient"`` (see :attr:`supported_segmenters`).
            progress: Progress sink for the gradient descent (cancellable).
            fast: For ``"gradient"``: the frames' fast heatmaps when known (e.g.
                ``result.heatmap`` from :meth:`inspect`), so no second forward pass runs.
        """
        if method not in self.supported_segmenters:
            raise ValueError(self._no_map_message(method))
        originals, images = images, self._model_view(images)
        if method == "fast":
            _, raw = self.detector.score_and_maps(images)
        else:
            raw = gradient_raw_maps(self.detector, images, scale=self.info.get("gradient_scale"),
                                    fast_calibration=self.pixel_calibration.get("fast"), fast=fast,
                                    progress=progress or silent())
        return to_heatmaps(originals, raw, method, self.pixel_calibration.get(method), self.regions)

    def _no_map_message(self, method: str) -> str:
        return (f"this {self.detector_kind} model has no {method!r} map; "
                f"available: {', '.join(self.supported_segmenters) or 'none'}")

    def __repr__(self) -> str:
        return (f"InspectionModel({self.detector_kind}, backbone={self.backbone}, "
                f"threshold={self.threshold:.4g}, hash={self.model_hash[:12]})")
