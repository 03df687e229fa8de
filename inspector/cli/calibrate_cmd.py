"""``inspector calibrate``: choose a model's threshold on good (and bad) images."""

from __future__ import annotations

import numpy as np

from inspector.cli.common import add_device, add_quiet, load_folder, load_model, warn
from inspector.cli.progress_bar import progress_bar
from inspector.cli.rates import print_rates
from inspector.cli.sign_cmd import add_trusted_key, trust_from_args
from inspector.core.imageio import image_digest

HELP = "set a model's threshold from held-out good images (and known-bad ones)"


def add_arguments(parser) -> None:
    """Arguments of ``inspector calibrate``."""
    parser.add_argument("model", metavar="MODEL")
    parser.add_argument("--good", metavar="DIR", required=True,
                        help="good images; reference images among them keep their unbiased k-fold score")
    parser.add_argument("--bad", metavar="DIR", help="known-bad images (for escape rate, F1)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--frr", type=float, help="target false-reject rate on good images (default 0.01)")
    group.add_argument("--policy", choices=("frr", "f1", "escape", "manual"), help="threshold policy")
    parser.add_argument("--escape", type=float, help="target escape rate for --policy escape (default 0)")
    parser.add_argument("--threshold", type=float, help="raw threshold for --policy manual")
    parser.add_argument("--with-references", action="store_true",
                        help="pool the new good images with the model's stored held-out scores")
    parser.add_argument("-o", "--output", metavar="MODEL", help="write here instead of updating MODEL in place")
    parser.add_argument("--force", action="store_true",
                        help="replace the model file even if it is read-only (by default a read-only model "
                             "is refused: it was protected on purpose)")
    parser.add_argument("--db", metavar="PATH", help="results database whose audit trail records the change")
    add_trusted_key(parser)
    add_device(parser)
    add_quiet(parser)


def held_out_good_scores(model, images: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """Scores of good images, with the k-fold held-out score for images the model was fitted on.

    Returns the scores and how many came from the stored held-out scores.
    """
    stored = model.info.get("reference_held_out", {})
    scores = np.empty(len(images))
    fresh = []
    reused = 0
    for index, image in enumerate(images):
        digest = image_digest(image)
        if digest in stored:
            scores[index] = stored[digest]
            reused += 1
        else:
            fresh.append(index)
    if fresh:
        scores[fresh] = model.score_images([images[i] for i in fresh])
    return scores, reused


def reused_mask(model, images: list[np.ndarray]) -> np.ndarray:
    """True for images that are not references of the model (their stored score is already pooled)."""
    stored = model.info.get("reference_held_out", {})
    return np.array([image_digest(image) not in stored for image in images], dtype=bool)


def run(args) -> int:
    """Score the good/bad folders, apply the policy and save the calibrated model."""
    from inspector.calibration.policies import calibrate
    from inspector.storage.model_file import check_output_path, signature_path

    policy = args.policy or "frr"
    target = args.escape if policy == "escape" else args.frr
    if policy == "manual" and args.threshold is None:
        raise ValueError("--policy manual needs --threshold")
    if policy in ("f1", "escape") and not args.bad:
        raise ValueError(f"--policy {policy} needs known-bad images (--bad DIR)")
    output = args.output or args.model
    check_output_path(output, overwrite_read_only=args.force)
    signed = signature_path(output).is_file()
    model = _load(args)
    with progress_bar(args.quiet, "calibrate") as progress:
        good_images = load_folder([args.good], progress, "good").images
        good, reused = held_out_good_scores(model, good_images)
        fresh, pooled = len(good) - reused, 0
        if args.with_references:
            stored = np.asarray(model.calibration.good_scores, dtype=np.float64)
            pooled = len(stored)
            good = np.concatenate([stored, good[reused_mask(model, good_images)]]) if reused else \
                np.concatenate([stored, good])
        bad = np.array([])
        if args.bad:
            bad_images = load_folder([args.bad], progress, "bad").images
            bad = model.score_images(bad_images)
    calibration = calibrate(good, bad, policy=policy, target=target, threshold=args.threshold)
    new_hash = model.with_calibration(calibration).save(output, overwrite_read_only=args.force)
    _audit(args, model, calibration, new_hash, output)
    print_rates(calibration, f"good images ({reused} reference images scored held-out, {fresh} new"
                + (f", {pooled} stored held-out scores pooled" if pooled else "") + ")")
    print(f"model:        {output}")
    if signed:
        warn(f"{signature_path(output).name} signed the previous file and was removed; "
             f"sign the new one: inspector sign {output} --key KEY")
    return 0


def _load(args):
    """The model, checked against the trust policy (settings, environment and ``--trusted-key``)."""
    if not args.trusted_key:
        return load_model(args.model, args.device)
    from inspector.pipeline.model import InspectionModel

    return InspectionModel.load(args.model, device=args.device, trust=trust_from_args(args))


def _audit(args, model, calibration, new_hash: str, output: str) -> None:
    """The ``calibration`` row of the audit trail in ``--db`` (old and new raw threshold, both hashes)."""
    if not getattr(args, "db", None):
        return
    from inspector.cli.feedback_cmd import record_audit

    record_audit(args.db, "calibration", old=f"{model.threshold:.6g}", new=f"{calibration.threshold:.6g}",
                 old_model_hash=model.model_hash, new_model_hash=new_hash,
                 detail={"model": str(args.model), "output": str(output), "policy": args.policy or "frr",
                         "good": str(args.good), "bad": args.bad, "source": "command line"})
