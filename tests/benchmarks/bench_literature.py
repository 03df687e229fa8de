"""The detectors from the literature (ae-l2, ae-ssim, vae, anogan) on MVTec-layout folders, one pass each.

    python tests/benchmarks/bench_literature.py ROOT [--detector KIND ...] [--categories NAME ...]
                                              [--max-seconds S] [--threads 1] [--json PATH]

Per category and detector: fit on ``train/good`` (the detector's own validation
split, as ``inspector benchmark`` does), score and map every test image once and
print image AUROC, pixel AUROC and AUPRO (to 30 % FPR). The map goes through the
same steps as ``inspector benchmark --segmenter fast``: the pixel calibration from
the held-out maps of the fit (:func:`fit_pixel_calibration`), normalization and the
resize to the frame; the metrics are :mod:`inspector.metrics`. What it leaves out
is what costs the trained detectors most and says nothing about accuracy:
``benchmark`` scores the test images three times (batched, batch-1 latency, maps),
which for AnoGAN's latent search is minutes per category, and calibrates gradient
maps. ``--max-seconds`` caps each detector's training time (default: the
detector's own budget). ``--save DIR`` writes each fitted network to
``DIR/CATEGORY__KIND.safetensors``; ``--load DIR`` takes the networks from there
instead of training them and derives everything a detector takes from its validation
images (the split of the fit, by its seed) with the current code and options, so map
variants can be compared on one trained network per set.

``--halves`` adds each metric on the tuning and the held-out half of the test images, split
as ``bench_fusion_variants.py`` splits them: choose on ``tune`` over every set, report ``held``.

Results are printed as JSON lines as soon as each fit is done, so a run stopped
half-way keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root")
    parser.add_argument("--detector", nargs="+", default=["ae-l2", "ae-ssim", "vae", "anogan"])
    parser.add_argument("--categories", nargs="+", default=None)
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="detector option for every detector, repeatable (JSON values)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None, help="also append the JSON lines to this file")
    parser.add_argument("--save", default=None, metavar="DIR", help="save each fitted network here")
    parser.add_argument("--load", default=None, metavar="DIR",
                        help="reuse the networks saved here (by --save) instead of training")
    parser.add_argument("--halves", action="store_true",
                        help="also report each metric on the tuning and the held-out half of the test images "
                             "(the split of bench_fusion_variants.py: choose on 'tune', report 'held')")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from inspector.core.imageio import read_image
    from inspector.core.progress import silent
    from inspector.datasets.mvtec import find_categories, load_category, load_mask
    from inspector.detectors.base import detector_class
    from inspector.metrics.image import auroc
    from inspector.metrics.pixel import aupro, pixel_auroc
    from inspector.segmentation.geometry import to_frame_geometry
    from inspector.segmentation.pixel_calibration import fit_pixel_calibration, normalize_map

    from bench_fusion_variants import halves  # the same seeded split of the test images

    options = {}
    for pair in args.option:
        key, value = pair.split("=", 1)
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    if args.max_seconds is not None:
        options["max_seconds"] = args.max_seconds
    paths = find_categories(args.root)
    if args.categories:
        wanted = set(args.categories)
        paths = [p for p in paths if Path(p).name in wanted]
    rows = []
    for path in paths:
        category = load_category(path)
        train = [read_image(p) for p in category.train_good]
        test = [read_image(item.path) for item in category.test]
        labels = np.array([item.label for item in category.test])
        has_masks = any(item.mask_path for item in category.test)
        masks = [load_mask(item, image.shape[:2]) for item, image in zip(category.test, test)] if has_masks else []
        for kind in args.detector:
            detector = detector_class(kind)(device=args.device, **options)
            started = time.perf_counter()
            stored = Path(args.load or args.save or ".") / f"{category.name}__{kind}.safetensors"
            if args.load:
                fitted = _reuse(detector, stored, train)
            else:
                fitted = detector.fit(train, silent(), folds=5)
                if args.save:
                    _save(detector, stored)
            fit_s = time.perf_counter() - started
            scores, maps = detector.score_and_maps(test)
            row = {"category": category.name, "detector": kind, "image_auroc": round(auroc(labels, scores), 4)}
            if has_masks:
                calibration = fit_pixel_calibration(fitted.held_out_maps)
                frames = [to_frame_geometry(normalize_map(raw, calibration), image.shape[:2])
                          for raw, image in zip(maps, test)]
                row["pixel_auroc"] = round(pixel_auroc(masks, frames), 4)
                row["aupro"] = round(aupro(masks, frames), 4)
            if args.halves:
                for half in ("tune", "held"):
                    part = halves(len(labels), category.name)[half]
                    metrics = {"image_auroc": round(auroc(labels[part], scores[part]), 4)}
                    if has_masks:
                        chosen_masks, chosen_frames = [masks[i] for i in part], [frames[i] for i in part]
                        metrics["pixel_auroc"] = round(pixel_auroc(chosen_masks, chosen_frames), 4)
                        metrics["aupro"] = round(aupro(chosen_masks, chosen_frames), 4)
                    row[half] = metrics
            if has_masks:
                if getattr(detector, "coarse_sigma", 0) > 0:
                    # The same network's fine-scale map alone (what the autoencoders drew before the
                    # coarse scale), raw like the two-scale one beside it: a comparison without retraining.
                    row.update(_scales_compared(detector, test, masks, maps, pixel_auroc, to_frame_geometry))
            row["fit_s"] = round(fit_s, 1)
            row["training"] = detector.report.to_dict() if detector.report else None
            rows.append(row)
            line = json.dumps(row)
            print(line, flush=True)
            if args.json:
                with open(args.json, "a") as handle:
                    handle.write(line + "\n")
    return 0


def _save(detector, path: Path) -> None:
    """The fitted detector's networks and options, as safetensors with the config in its metadata."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in detector.tensors().items()}
    save_file(tensors, str(path), metadata={"config": json.dumps(detector.config())})


def _reuse(detector, path: Path, train):
    """Load the networks saved by :func:`_save` into ``detector`` (built with the current options),
    then do what ``fit`` does after training: validation statistics and held-out maps."""
    from safetensors import safe_open

    from inspector.detectors.training import TrainingReport

    with safe_open(str(path), "pt") as handle:
        config = json.loads(handle.metadata()["config"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    saved = config["options"]
    if saved["seed"] != detector.seed or saved["image_size"] != detector.preprocessing.image_size:
        raise ValueError(f"{path} was trained with another seed or image size")
    detector.report = TrainingReport(**config["training"]) if config.get("training") else None
    detector.load_networks(tensors)
    _, val_idx = detector.validation_split(len(train), folds=5)
    return detector.finish_fit(detector._tensor([train[i] for i in val_idx]))


def _scales_compared(detector, test, masks, maps, pixel_auroc, to_frame_geometry) -> dict:
    """Pixel AUROC of the raw two-scale map and of the same network's fine-scale map alone."""
    import torch

    with torch.no_grad():
        fine = torch.cat([detector._scale_maps(detector._tensor(test[i:i + 16]))[0] for i in range(0, len(test), 16)])
    def frames(values):
        return [to_frame_geometry(m, image.shape[:2]) for m, image in zip(values, test)]
    return {"pixel_auroc_raw": round(pixel_auroc(masks, frames(maps)), 4),
            "fine_pixel_auroc_raw": round(pixel_auroc(masks, frames(fine.numpy())), 4)}


if __name__ == "__main__":
    sys.exit(main())
