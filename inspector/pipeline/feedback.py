"""Operator feedback: images an operator re-labelled, kept beside the model, and the refit that uses them.

"Mark good" (a false reject) puts a copy of the image into ``good/`` of the
model's feedback folder; "mark defect" (an escape) into ``bad/``. The folder is
``MODEL.feedback/`` next to the model file, or, for a model not saved yet,
``<data dir>/feedback/<first 16 hex of the model hash>/``. A refit with feedback
fits a new model on the model's reference folder (stored in the model at fit
time) plus the marked-good images, with the marked-bad images as known-bad ones
for the escape estimate and the same detector, backbone, input size and region
mask. The model in use is never changed.

No Qt here.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np

from inspector.core.paths import data_dir
from inspector.core.progress import Progress, silent

LABELS = ("good", "bad")
"""Feedback labels: ``good`` = a false reject marked good, ``bad`` = an escape marked defect."""


def feedback_folder(model_path: str | os.PathLike | None, model_hash: str = "") -> Path:
    """The feedback folder of a model: ``MODEL.feedback`` beside its file, or one in the data dir.

    Args:
        model_path: The model file (``None`` or ``""`` for an unsaved model).
        model_hash: The model's hash (names the folder of an unsaved model).
    """
    if model_path:
        path = Path(model_path)
        return path.with_name(path.name + ".feedback")
    if not model_hash:
        raise ValueError("an unsaved model's feedback folder needs its hash")
    return data_dir() / "feedback" / model_hash[:16]


def add_feedback(folder: str | os.PathLike, label: str, *, source_path: str | os.PathLike | None = None,
                 image: np.ndarray | None = None, name: str = "") -> Path:
    """Keep one re-labelled image in ``folder/label/``; returns the file written.

    The file itself is copied when it exists (bytes unchanged); otherwise (a camera
    frame) ``image`` is written as PNG. A name already there gets a number, so two
    frames called alike never overwrite each other. A file marked again with the same
    label is kept once (the existing copy is returned); marked with the other label,
    its copy under the old label is removed: one image, one label. The copy is written to a
    hidden temporary and renamed, so a kill leaves no partial image behind.

    Raises:
        ValueError: for an unknown label or neither a readable file nor an image.
    """
    if label not in LABELS:
        raise ValueError(f"feedback label must be one of {', '.join(LABELS)}, got {label!r}")
    target_dir = Path(folder) / label
    target_dir.mkdir(parents=True, exist_ok=True)
    source = Path(source_path) if source_path else None
    if source is not None and source.is_file():
        stem, suffix = source.stem, source.suffix.lower() or ".png"
    elif image is not None:
        stem, suffix = Path(name).stem if name else time.strftime("frame-%Y%m%d-%H%M%S"), ".png"
    else:
        raise ValueError(f"nothing to keep: {source_path or 'no file'} is not a readable file and no image was given")
    if source is not None and source.is_file():
        same = _identical_in(target_dir, source)
        if same is not None:  # marked with this label before: keep one copy, not name-2.png
            return same
        other = _identical_in(Path(folder) / ("bad" if label == "good" else "good"), source)
        if other is not None:  # the operator changed their mind: one image, one label
            other.unlink()
    target = _free_name(target_dir, stem, suffix)
    temp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        if source is not None and source.is_file():
            shutil.copyfile(source, temp)
        else:
            from inspector.core.imageio import write_image

            write_image(temp.with_suffix(".png"), image)
            temp = temp.with_suffix(".png")
        os.replace(temp, target)
    finally:
        if temp.exists():
            temp.unlink()
    return target


def _identical_in(folder: Path, source: Path) -> Path | None:
    """A file of ``folder`` with exactly the bytes of ``source`` (``None``: none, or no folder)."""
    if not folder.is_dir():
        return None
    size = source.stat().st_size
    for candidate in sorted(folder.iterdir()):
        if (candidate.is_file() and not candidate.name.startswith(".") and candidate.stat().st_size == size
                and filecmp.cmp(candidate, source, shallow=False)):
            return candidate
    return None


def _free_name(folder: Path, stem: str, suffix: str) -> Path:
    candidate = folder / f"{stem}{suffix}"
    number = 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{stem}-{number}{suffix}"
    return candidate


@dataclass(frozen=True)
class FeedbackSet:
    """The images of a feedback folder."""

    folder: Path
    good: list[Path] = field(default_factory=list)
    bad: list[Path] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """No image marked yet."""
        return not self.good and not self.bad


def list_feedback(folder: str | os.PathLike) -> FeedbackSet:
    """The marked-good and marked-bad images kept in ``folder`` (missing folders: none)."""
    from inspector.core.imageio import list_images

    folder = Path(folder)
    found = {}
    for label in LABELS:
        sub = folder / label
        found[label] = [p for p in list_images([sub]).images if not p.name.startswith(".")] if sub.is_dir() else []
    return FeedbackSet(folder, found["good"], found["bad"])


def carry_feedback(source: str | os.PathLike, target: str | os.PathLike) -> int:
    """Copy the marks of one feedback folder into another (a refit's new model keeps the old marks).

    Without this, the next refit of the new model would start from its own, empty
    folder and forget what was marked before. Files already there are kept.
    Returns how many images were copied.
    """
    source, target = Path(source), Path(target)
    if source.resolve() == target.resolve():
        return 0
    copied = 0
    marks = list_feedback(source)
    for label, paths in (("good", marks.good), ("bad", marks.bad)):
        for path in paths:
            destination = target / label / path.name
            if destination.exists():
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            copied += 1
    return copied


def mask_picture(model) -> np.ndarray | None:
    """The model's region mask as a picture (white inspected), for a refit; ``None`` without one."""
    regions = getattr(model, "regions", None)
    if regions is None:
        return None
    return regions.inspected.astype(np.uint8) * 255


@dataclass(frozen=True)
class RefitSettings:
    """How a model was fitted, to fit it again on more images (a refit with feedback).

    Attributes:
        detector: The detector kind.
        backbone: The backbone name (``"lite0"`` for detectors without one: unused).
        weights: The backbone weights file the detector was built with (``None``: packaged).
        image_size: The network input size.
        options: The detector's constructor options (components, levels, bank sizes, ...).
        folds: k of the held-out calibration the fit was asked for (``None``: the fit's rule).
        policy, target: The threshold policy and its target the fit asked for (``None``: the fit's
            default rule: ``frr`` at 1 %, best F1 with known-bad images).
        mask: The model's region mask picture (white inspected), ``None`` without regions.
    """

    detector: str
    backbone: str
    weights: str | None
    image_size: int
    options: dict
    folds: int | None
    policy: str | None
    target: float | None
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)


def refit_settings(model) -> RefitSettings:
    """The settings that fit ``model`` again: its own detector, options, input size, regions and policy.

    Models written since fits record what they were asked for (``info["fit_request"]``)
    give exactly that; older files give what their detector configuration holds
    (levels, batch size, fast map, fusion components and bank sizes, a trained
    detector's constructor options). The threshold policy is the one the fit was asked
    for: an explicit ``--frr`` target stays, the default stays the default (``frr`` at
    1 %, best F1 once there are known-bad images, e.g. marked defects). A manual
    threshold is not carried over (its raw value means nothing to another model).
    """
    from inspector.detectors.base import detector_class

    detector = model.detector
    kind = model.detector_kind
    cls_ = detector_class(kind)
    request = model.info.get("fit_request")
    if isinstance(request, dict):
        options = dict(request.get("options") or {})
        folds = request.get("folds")
    else:
        options, folds = _options_from_config(cls_, detector.config()), None
    allowed = set(cls_.options())
    options = {k: v for k, v in options.items() if k in allowed and k not in ("backbone", "weights", "image_size",
                                                                             "device")}
    if isinstance(request, dict):
        policy, target = request.get("policy"), request.get("target")
    else:  # an older file: a non-default frr target is a choice; the rest is the fit's default rule
        calibration = model.calibration
        chosen = calibration.policy == "frr" and calibration.target not in (None, 0.01)
        policy, target = ("frr", calibration.target) if chosen else (None, None)
    if policy == "manual":
        policy, target = None, None
    return RefitSettings(
        detector=kind, backbone=model.backbone or "lite0", weights=getattr(detector, "weights", None) or None,
        image_size=int(detector.preprocessing.image_size), options=options,
        folds=int(folds) if folds else None, policy=policy, target=target, mask=mask_picture(model))


def _options_from_config(cls_, config: dict) -> dict:
    """Constructor options recovered from a fitted detector's stored configuration (older model files)."""
    if isinstance(config.get("options"), dict):  # trained detectors keep their constructor's arguments
        return dict(config["options"])
    options = {}
    if "levels" in config:
        options["levels"] = [int(level) for level in config["levels"]]
    if "batch_size" in config:
        options["batch_size"] = int(config["batch_size"])
    if "fast_map" in cls_.options() and "patch_map" in config:
        options["fast_map"] = config["patch_map"] is not None
    if "components" in config:
        options["components"] = list(config["components"])
    bank = config.get("bank")
    if isinstance(bank, dict) and "coreset" in bank and "dimensions" in bank:  # a fusion memory bank
        from inspector.detectors.fusion_state import stored_options

        options.update(stored_options(config))
    return options


def refit_with_feedback(model, feedback: FeedbackSet, reference_dir: str | os.PathLike | None = None,
                        progress: Progress | None = None, folds: int | None = None, device=None):
    """A new model fitted on the references plus the marked-good images; marked-bad ones calibrate escapes.

    The new model is fitted as ``model`` was (:func:`refit_settings`): same detector and
    options, backbone and weights, input size, region mask and threshold policy.

    Args:
        model: The model in use.
        feedback: What the operators marked (:func:`list_feedback`).
        reference_dir: The reference folder; default the one stored in the model.
        progress: Progress sink (cancellable).
        folds: k of the held-out calibration (default: what the model's fit asked for, else the fit's rule).
        device: Torch device.

    Raises:
        ValueError: without a reference folder (the model does not know one and none was
            given) or when it has no images.
    """
    from inspector.core.imageio import list_images, read_images
    from inspector.pipeline.model import InspectionModel

    progress = progress or silent()
    folder = reference_dir or model.info.get("reference_dir")
    if not folder:
        raise ValueError("this model does not record its reference folder (fitted before Inspector kept it): "
                         "give the reference folder")
    if not Path(folder).is_dir():
        raise ValueError(f"the reference folder {folder} is not there any more: give the reference folder")
    paths = list_images([folder]).images + list(feedback.good)
    loaded = read_images(paths, _reading(progress, "reference and marked-good"))
    if not loaded.images:
        raise ValueError(f"no readable images in {folder}")
    bad = read_images(feedback.bad, _reading(progress, "marked-bad")).images if feedback.bad else []
    settings = refit_settings(model)
    policy, target = usable_policy(settings, bool(bad))
    return InspectionModel.fit(
        loaded.images, detector=settings.detector, backbone=settings.backbone, weights=settings.weights,
        image_size=settings.image_size, folds=folds or settings.folds, bad_images=bad or None, policy=policy,
        target=target, progress=progress, device=device, mask=settings.mask,
        reference_dir=os.path.abspath(folder), **settings.options)


def usable_policy(settings: RefitSettings, with_bad: bool) -> tuple[str | None, float | None]:
    """The model's policy and target, or the fit's default when it needs known-bad images that are not there."""
    if settings.policy in ("f1", "escape") and not with_bad:
        return None, None
    return settings.policy, settings.target


def _reading(progress: Progress, label: str) -> Progress:
    return Progress(lambda done, total, _: progress.update(done, total, f"reading {label} images ({done}/{total})"))


def feedback_counts(feedback: FeedbackSet) -> dict[str, int]:
    """``{"good": n, "bad": m}`` for messages and the audit trail."""
    return {"good": len(feedback.good), "bad": len(feedback.bad)}


def with_known_bad(calibration, bad_scores):
    """``calibration`` with more known-bad scores (a known-bad folder added in the calibration view).

    The held-out good scores, the policy and its target stay; under ``frr`` the
    threshold therefore stays too and only the escape estimate is new, under
    ``f1`` and ``escape`` the threshold follows the larger bad set, and a
    ``manual`` threshold is kept as it is.
    """
    from inspector.calibration.policies import calibrate

    bad = [*calibration.bad_scores, *(float(s) for s in bad_scores)]
    manual = calibration.policy == "manual"
    return calibrate(calibration.good_scores, bad, policy=calibration.policy, target=calibration.target,
                     threshold=calibration.threshold if manual else None)


MOST_REJECTED = 0.5
"""A recalibration on frames confirmed good never keeps a threshold rejecting more of them than this."""


def recalibrated_on_good(calibration, good_scores, frr_target: float = 0.01):
    """A calibration whose good scores are those of production frames an operator confirmed good.

    For the drift watch's "recalibrate on the last N frames confirmed good": the
    frames were scored by the model fitted on all references, so their scores are
    unseen (unbiased), like ``inspector calibrate --good NEWDIR``. The policy and
    target stay; a manual threshold becomes ``frr`` at ``frr_target``. Known-bad
    scores are kept.

    Raises:
        ValueError: for fewer than two scores.
    """
    from inspector.calibration.policies import calibrate

    good = [float(s) for s in good_scores]
    if len(good) < 2:
        raise ValueError(f"{len(good)} frames confirmed good: at least 2 are needed to recalibrate")
    policy, target = calibration.policy, calibration.target
    if policy == "manual":
        policy, target = "frr", frr_target
    chosen = calibrate(good, calibration.bad_scores, policy=policy, target=target)
    if policy != "frr" and chosen.expected_frr > MOST_REJECTED:
        # Good parts scoring above every known-bad one: the best F1 (or escape target) then
        # rejects the very parts the operator just confirmed good. Their FRR target instead.
        chosen = calibrate(good, calibration.bad_scores, policy="frr", target=frr_target)
    return chosen
