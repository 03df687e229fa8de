"""The fit worker: builds a new InspectionModel from reference images, with progress and cancel.

The model in use is never touched: a fit produces a new object that the
station swaps in between frames (and keeps the old one for undo).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from inspector.catalog import DEFAULT_DETECTOR
from inspector.core.progress import Cancelled, Progress

logger = logging.getLogger(__name__)

_EMIT_INTERVAL = 0.05  # seconds between progress signals (the last one always goes out)


@dataclass(frozen=True)
class FitRequest:
    """What to fit a new model on.

    Attributes:
        reference_dir: Folder of good reference images.
        bad_dir: Optional folder of known-bad images (calibration by best F1 then).
        detector: Detector kind, e.g. ``"gaussian"``.
        backbone: Backbone name, e.g. ``"lite0"``.
        weights: Weights file for backbones that are not packaged.
        folds: k of the k-fold held-out calibration.
        image_size: Input size override (``None``: the backbone's own).
        save_path: Where to save the new model (``None``: not saved).
        feedback_folder: A model's feedback folder (:mod:`inspector.pipeline.feedback`): its
            marked-good images join the references, its marked-bad ones the known-bad images.
        mask: A region mask picture (white inspected) to fit with (``None``: the whole image).
        reason: What the fit is for, for the audit trail (``"refit"``, ``"refit with feedback"``).
        options: Detector constructor options (a refit with feedback passes the model's own).
        policy, target: Threshold policy and target (``None``: the fit's default).
    """

    reference_dir: str
    bad_dir: str | None = None
    detector: str = DEFAULT_DETECTOR
    backbone: str = "lite0"
    weights: str | None = None
    folds: int | None = None
    image_size: int | None = None
    save_path: str | None = None
    feedback_folder: str | None = None
    mask: Any = field(default=None, compare=False, repr=False)
    reason: str = "refit"
    options: dict = field(default_factory=dict, compare=False)
    policy: str | None = None
    target: float | None = None


class FitWorker(QObject):
    """Runs :meth:`InspectionModel.fit` on its own thread.

    Signals:
        fit_progress(int, int, str): done, total, message.
        model_fitted(InspectionModel, FitRequest, dict): just before ``fit_finished``: the new model,
            its request and what it was fitted on (counts), for the audit trail.
        fit_finished(InspectionModel, str): the new model and the path it was saved to ("" if not saved).
        fit_failed(str): why the fit failed.
        fit_cancelled(): the user cancelled.
    """

    fit_progress = Signal(int, int, str)
    model_fitted = Signal(object, object, dict)
    fit_finished = Signal(object, str)
    fit_failed = Signal(str)
    fit_cancelled = Signal()

    def __init__(self, runtime: str = "torch") -> None:
        """``runtime``: what decides frames of the new model, as :class:`ModelWorker`'s (``auto``: its
        exported graph when parity holds), so that a refit model runs as fast as the same file loaded."""
        super().__init__()
        self.runtime = runtime
        self._progress: Progress | None = None
        # A cancel that arrives while the fit request is still queued applies to that fit.
        self._cancel_pending = threading.Event()
        self._last_emit = 0.0

    def cancel(self) -> None:
        """Ask the running fit to stop at its next step (call from any thread)."""
        self._cancel_pending.set()
        progress = self._progress
        if progress is not None:
            progress.cancel()

    @Slot(object)
    def fit(self, request: FitRequest) -> None:
        """Load the images, fit, calibrate, optionally save; report by signals."""
        progress = Progress(self._report)
        self._progress = progress
        if self._cancel_pending.is_set():
            progress.cancel()
        try:
            model, saved, counts = self._fit(request, progress)
        except Cancelled:
            self.fit_cancelled.emit()
        except Exception as exc:
            logger.exception("fit failed")
            self.fit_failed.emit(str(exc) or type(exc).__name__)
        else:
            self.model_fitted.emit(model, request, counts)
            self.fit_finished.emit(model, saved)
        finally:
            self._progress = None
            self._cancel_pending.clear()

    def _fit(self, request: FitRequest, progress: Progress) -> tuple[Any, str, dict]:
        from inspector.pipeline.model import InspectionModel

        images = load_folder(request.reference_dir, progress, "reference")
        if len(images) < max(2, request.folds or 2):
            raise ValueError(
                f"{request.reference_dir}: {len(images)} readable images; at least {max(2, request.folds or 2)} are needed"
            )
        bad = load_folder(request.bad_dir, progress, "bad") if request.bad_dir else []
        counts = {"references": len(images), "bad": len(bad)}
        if request.feedback_folder:
            from inspector.pipeline.feedback import list_feedback

            feedback = list_feedback(request.feedback_folder)
            images = images + load_paths(feedback.good, progress, "marked-good")
            bad = bad + load_paths(feedback.bad, progress, "marked-bad")
            counts.update(marked_good=len(feedback.good), marked_bad=len(feedback.bad))
        policy, target = request.policy, request.target
        if policy in ("f1", "escape") and not bad:
            policy, target = None, None  # these policies need known-bad images
        model = InspectionModel.fit(
            images,
            detector=request.detector,
            backbone=request.backbone,
            weights=request.weights,
            image_size=request.image_size,
            folds=request.folds,
            bad_images=bad or None,
            policy=policy,
            target=target,
            progress=progress,
            mask=request.mask,
            reference_dir=str(Path(request.reference_dir).resolve()),
            **request.options,
        )
        saved = ""
        if request.save_path:
            progress.update(1, 1, f"saving {request.save_path}")
            model.save(request.save_path)
            saved = str(request.save_path)
        if request.feedback_folder:
            from inspector.pipeline.feedback import carry_feedback, feedback_folder

            counts["carried"] = carry_feedback(request.feedback_folder, feedback_folder(saved, model.model_hash))
        if self.runtime != "torch":
            from inspector.export.accelerated import accelerate

            progress.update(1, 1, "preparing the fast runtime")
            try:
                model, choice = accelerate(model, runtime=self.runtime)
                logger.info("refitted model %s: %s", model.model_hash[:12], choice.line())
            except Exception as exc:  # noqa: BLE001 - the fit is done: it runs on torch rather than being lost
                logger.warning("refitted model %s stays on torch: %s", model.model_hash[:12], exc)
        return model, saved, counts

    def _report(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if done >= total or now - self._last_emit >= _EMIT_INTERVAL:
            self._last_emit = now
            self.fit_progress.emit(int(done), int(total), message)


def load_folder(folder: str | Path, progress: Progress, label: str) -> list:
    """Read every image of a folder; unreadable files are skipped with a log line."""
    from inspector.core.imageio import list_images

    paths = list_images([folder]).images
    if not paths:
        raise ValueError(f"no images in {folder}")
    return load_paths(paths, progress, label)


def load_paths(paths: list, progress: Progress, label: str) -> list:
    """Read image files; unreadable ones are skipped with a log line."""
    from inspector.core.imageio import read_images

    if not paths:
        return []
    loaded = read_images(paths, Progress(lambda done, total, _: progress.update(
        done, total, f"reading {label} images ({done}/{total})")))
    for path, reason in loaded.errors:
        logger.warning("skipping %s: %s", path, reason)
    return loaded.images
