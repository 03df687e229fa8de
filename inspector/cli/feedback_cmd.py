"""``inspector feedback``: keep re-labelled images with a model, and refit with them.

``inspector feedback MODEL --good IMG... --bad IMG...`` copies false rejects
(marked good) and escapes (marked defect) into ``MODEL.feedback/good`` and
``/bad`` (see :mod:`inspector.pipeline.feedback`); with ``--db`` each one is a
``feedback`` row of the audit trail. ``--refit -o NEW`` then fits a new model on
the model's reference folder plus the marked-good images (marked-bad ones
calibrate the escape rate) and, with ``--db``, records a ``refit`` row.
"""

from __future__ import annotations

import os
from pathlib import Path

from inspector.cli.common import add_device, add_quiet, warn
from inspector.cli.progress_bar import progress_bar

HELP = "keep operator feedback (false rejects marked good, escapes marked defect) with a model; refit with it"


def add_arguments(parser) -> None:
    """Arguments of ``inspector feedback``."""
    parser.add_argument("model", metavar="MODEL", help="the model file the feedback belongs to")
    parser.add_argument("--good", nargs="+", default=[], metavar="IMG", help="images wrongly rejected (they are good)")
    parser.add_argument("--bad", nargs="+", default=[], metavar="IMG", help="defective images the model let through")
    parser.add_argument("--refit", action="store_true",
                        help="fit a new model on the references plus the marked-good images (needs -o)")
    parser.add_argument("-o", "--output", metavar="NEW", help="where --refit writes the new model")
    parser.add_argument("--references", metavar="DIR",
                        help="reference folder for --refit (default: the one stored in the model)")
    parser.add_argument("--db", metavar="PATH", help="results database that gets the audit rows")
    parser.add_argument("--force", action="store_true", help="replace NEW even if it is a read-only file")
    add_device(parser)
    add_quiet(parser)


def record_audit(db: str | None, action: str, **values) -> None:
    """One audit row in the results database ``db`` (nothing when ``db`` is ``None``)."""
    if not db:
        return
    from inspector.storage.stores import open_store

    store = open_store(db)
    try:
        store.record_audit(action, **values)
    finally:
        store.close()


def run(args) -> int:
    """Copy the marked images into the feedback folder, then refit when asked."""
    from inspector.pipeline.feedback import add_feedback, feedback_counts, feedback_folder, list_feedback
    from inspector.storage.model_file import check_output_path, load_model_file

    if args.refit and not args.output:
        raise ValueError("--refit needs -o NEW (the model in use is never replaced)")
    if not args.refit and not args.good and not args.bad:
        raise ValueError("nothing to do: give --good IMG..., --bad IMG... or --refit -o NEW")
    for image in [*args.good, *args.bad]:
        if not Path(image).is_file():
            raise ValueError(f"{image}: no such image file")
    if args.output:
        check_output_path(args.output, overwrite_read_only=args.force)
    model_hash = load_model_file(args.model).metadata["content_sha256"]
    folder = feedback_folder(args.model)
    for label, images in (("good", args.good), ("bad", args.bad)):
        for image in images:
            kept = add_feedback(folder, label, source_path=image)
            # The command line does not know the verdict the image was given: no old value is invented.
            record_audit(args.db, "feedback", old=None, new=label, old_model_hash=model_hash, new_model_hash=model_hash,
                         detail={"path": os.path.abspath(image), "kept": str(kept), "source": "command line"})
            print(f"{label}: {image} -> {kept}")
    feedback = list_feedback(folder)
    counts = feedback_counts(feedback)
    print(f"feedback:     {folder} ({counts['good']} marked good, {counts['bad']} marked defect)")
    if args.refit:
        return _refit(args, feedback, model_hash)
    return 0


def _refit(args, feedback, model_hash: str) -> int:
    from inspector.cli.common import load_model
    from inspector.cli.rates import print_rates
    from inspector.pipeline.feedback import feedback_counts, refit_with_feedback

    model = load_model(args.model, args.device)
    with progress_bar(args.quiet, "refit") as progress:
        new = refit_with_feedback(model, feedback, args.references, progress=progress, device=args.device)
    new_hash = new.save(args.output, overwrite_read_only=args.force)
    from inspector.pipeline.feedback import carry_feedback, feedback_folder

    carry_feedback(feedback.folder, feedback_folder(args.output))  # the next refit keeps these marks
    record_audit(args.db, "refit", old=args.model, new=args.output, old_model_hash=model_hash,
                 new_model_hash=new_hash, detail={"feedback": feedback_counts(feedback),
                                                  "reference_dir": new.info.get("reference_dir")})
    print(f"model:        {args.output} (hash {new_hash[:16]})")
    print(f"references:   {new.info['n_reference']} images ({len(feedback.good)} of them marked good)")
    print_rates(new.calibration)
    if not feedback.good and not feedback.bad:
        warn("no feedback kept yet: the refit used the references only")
    return 0
