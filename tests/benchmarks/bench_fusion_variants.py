"""Compare variants of the fusion detector on the whole benchmark suite, on a tuning half.

    python tests/benchmarks/bench_fusion_variants.py data/suite --cache /tmp/fusion-cache \
        [--variants default legacy-bank ...] [--half tune|held|all]

The backbone runs once per image (its outputs are cached under ``--cache``); each
variant is then fitted and scored on the cached outputs, so a variant costs
seconds, not minutes. Every set's test images are split once, by a fixed seed,
into a *tuning* half and a *held-out* half: choose on ``--half tune``, report
``--half held``. Pixel metrics are computed at the detector's input size (masks
resized with nearest neighbour), which is what the comparison needs; the README
figures come from ``inspector benchmark``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from inspector.core.imageio import read_image
from inspector.core.malloc_tuning import tune_malloc
from inspector.core.progress import silent
from inspector.datasets.mvtec import find_categories, load_category, load_mask
from inspector.detectors import fusion as fusion_module
from inspector.detectors.fusion import MIN_IMAGE_SIZE, THREE_COMPONENTS, FusionDetector
from inspector.detectors.fusion_state import LEGACY_BANK
from inspector.detectors.patch_map import PatchMapModel
from inspector.metrics.image import auroc
from inspector.metrics.pixel import aupro, pixel_auroc
from inspector.segmentation.smoothing import grid_to_map

SEED = 20261202


def halves(count: int, name: str) -> dict[str, np.ndarray]:
    """A fixed random split of ``count`` test images into a tuning and a held-out half."""
    rng = np.random.default_rng([SEED, sum(map(ord, name))])
    order = rng.permutation(count)
    return {"tune": np.sort(order[: count // 2]), "held": np.sort(order[count // 2:]), "all": np.arange(count)}


def extract(category, cache: Path, size: int):
    """Cached backbone outputs (pooled, spatial) of a category's train and test images, plus labels and masks."""
    path = cache / f"{category.name}-{size}-L345.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    detector = _with_levels(FusionDetector, CACHED_LEVELS)(size)
    train = detector.extract([read_image(p) for p in category.train_good])
    images = [read_image(item.path) for item in category.test]
    test = detector.extract(images)
    masks = [load_mask(item, (size, size)) if item.mask_path else None for item in category.test]
    data = {"train": train, "test": test, "labels": np.array([item.label for item in category.test]),
            "types": [item.defect_type for item in category.test],
            "masks": [None if m is None else m.astype(bool) for m in masks]}
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(data, path)
    return data


def evaluate(detector: FusionDetector, data: dict, rows: np.ndarray) -> dict:
    """Image AUROC and, with masks, pixel AUROC / AUPRO of the fitted detector on test ``rows``."""
    pooled, spatial = data["test"]
    scores, maps = [], []
    with torch.inference_mode():
        for start in range(0, len(rows), 32):
            part = rows[start:start + 32]
            p = [torch.from_numpy(level[part]) for level in pooled]
            s = [m[torch.as_tensor(part)] for m in spatial]
            score, fused = detector._evaluate(p, s, True)
            scores.append(score.cpu().numpy())
            maps.append(fused.float().cpu().numpy())
    scores = np.concatenate(scores)
    maps = np.concatenate(maps)
    labels = data["labels"][rows]
    out = {"image": auroc(labels, scores)}
    if any(data["masks"][i] is not None for i in rows):
        size = maps.shape[-1]
        masks = [data["masks"][i] if data["masks"][i] is not None else np.zeros((size, size), bool) for i in rows]
        out["pixel"] = pixel_auroc(masks, list(maps))
        out["aupro"] = aupro(masks, list(maps))
    return out


class _MaxFusion(FusionDetector):
    """Fuses by the largest standardized evidence instead of their mean."""

    def _fuse(self, evidence):
        z = torch.stack([self._standardize(c, evidence[c].double()) for c in self.components])
        return (1.0 + z.amax(0) / fusion_module.SPREAD).clamp_min(1e-6)


def _soft_max_fusion(temperature):
    class _SoftMax(FusionDetector):
        """Fuses by a log-mean-exp of the standardized evidences: the mean for a large
        temperature, the maximum for a small one."""

        def _fuse(self, evidence):
            z = torch.stack([self._standardize(c, evidence[c].double()) for c in self.components])
            soft = temperature * (torch.logsumexp(z / temperature, 0) - np.log(len(z)))
            return (1.0 + soft / fusion_module.SPREAD).clamp_min(1e-6)
    return _SoftMax


def _reweighted(neighbours):
    """PatchCore's reweighting of the image score (Roth et al., 2022): the bank distance of
    each image's most anomalous cell is multiplied by ``1 - softmax(d)[0]``, ``d`` being that
    cell's distances to its nearest bank patch and that patch's ``neighbours - 1`` nearest
    bank patches: a cell whose match sits in a sparse part of the bank counts more. Here the
    whole bank map of an image is scaled by its factor (the peak is what the score takes)."""
    class _Reweighted(FusionDetector):
        def _bank_map(self, features, exclude=None):
            flat = self._bank_input(features)
            bank = self.bank.patches(exclude)
            count, _, height, width = flat.shape
            queries = self.bank.project(flat.permute(0, 2, 3, 1).reshape(-1, flat.shape[1])).view(count, height * width, -1)
            distances = torch.cdist(queries, bank.unsqueeze(0).expand(count, -1, -1))  # (N, hw, M)
            nearest, index = distances.min(2)
            grid = nearest.view(count, height, width)
            factors = self.edge_map(height, width)
            if factors is not None:
                grid = grid * factors
            peak = grid.flatten(1).argmax(1)                                # (N,)
            matched = index[torch.arange(count), peak]                      # (N,)
            support = torch.cdist(bank[matched], bank).topk(neighbours, largest=False).indices  # (N, k)
            query = queries[torch.arange(count), peak]                      # (N, D)
            to_support = (query.unsqueeze(1) - bank[support]).norm(dim=2)   # (N, k)
            weight = 1.0 - torch.softmax(to_support, 1)[:, 0]
            return grid_to_map(grid * weight.view(-1, 1, 1), self.preprocessing.image_size, self.patch_map.sigma)
    return _Reweighted


class _FromHeldOut(FusionDetector):
    """A fusion rule with a parameter learned from the held-out references' standardized
    evidences: the fit's one ``_fuse`` call passes exactly those (only test scores are measured)."""

    def fit_extracted(self, *args, **kwargs):
        self._learned = None
        return super().fit_extracted(*args, **kwargs)

    def _fuse(self, evidence):
        z = torch.stack([self._standardize(c, evidence[c].double()) for c in self.components])
        if self._learned is None:
            self._learned = self._learn(z)
        column = self._learned.view(-1, *([1] * (z.dim() - 1)))
        return (1.0 + self._combine(z, column) / fusion_module.SPREAD).clamp_min(1e-6)


def _envelope_fusion(components=fusion_module.DEFAULT_COMPONENTS):
    """The fused mean plus, for each evidence, its excess over the largest held-out standardized
    value of the references (their *envelope*; 0 inside it): one evidence far beyond every good
    part counts in full instead of a third. The product version tried also held each reference
    out against the others' envelope (for the threshold; test scores are the same)."""
    class _Envelope(_FromHeldOut):
        def _learn(self, z):
            return z.amax(1)

        def _combine(self, z, envelope):
            return z.mean(0) + (z - envelope).clamp_min(0).sum(0)
    return lambda size: _Envelope(image_size=size, components=components)


def _min_variance_fusion():
    """The standardized evidences weighted by ``w = C^-1 1 / (1^T C^-1 1)`` (negative weights
    clipped), ``C`` their covariance over the held-out references: the weights that give a
    defect shifting every evidence alike the best signal to noise, from good images alone."""
    class _MinVariance(_FromHeldOut):
        def _learn(self, z):
            w = torch.linalg.solve(torch.cov(z), torch.ones(len(z), dtype=z.dtype)).clamp_min(0)
            return w / w.sum()

        def _combine(self, z, weights):
            return (weights * z).sum(0)
    return lambda size: _MinVariance(image_size=size)


def _weighted_fusion(weights):
    class _Weighted(FusionDetector):
        """Fuses by a weighted mean of the standardized evidences (``weights`` per component;
        a component it does not name, such as ``local``, weighs 1)."""

        def _fuse(self, evidence):
            w = torch.tensor([weights.get(c, 1.0) for c in self.components], dtype=torch.float64)
            z = torch.stack([self._standardize(c, evidence[c].double()) for c in self.components])
            mean = (z * w.view(-1, *([1] * (z.dim() - 1)))).sum(0) / w.sum()
            return (1.0 + mean / fusion_module.SPREAD).clamp_min(1e-6)
    return _Weighted


def _weighted(global_weight, position_weight, bank_weight):
    """The maker of a weighted-fusion variant."""
    weights = {"global": global_weight, "position": position_weight, "bank": bank_weight}
    return lambda size: _weighted_fusion(weights)(image_size=size)



WITH_LOCAL = ("global", "position", "bank", "local")


def _plus_local(**options):
    """The default with the per-cell nearest-neighbour evidence (``local``) fused as a fourth."""
    return lambda size: FusionDetector(image_size=size, components=WITH_LOCAL, **options)

def _knn_bank(neighbours):
    """The default with the global bank's distance taken as the mean over the ``neighbours``
    nearest bank patches instead of the nearest one (a query matched by one stray good patch
    counts less)."""
    from inspector.detectors.memory_bank import MemoryBank

    class _KnnBank(MemoryBank):
        def distances(self, features, exclude=None):
            bank = self.patches(exclude)
            count, _, height, width = features.shape
            queries = self.project(features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]))
            squared = (torch.addmm((bank * bank).sum(1), queries, bank.T, alpha=-2.0)
                       + (queries * queries).sum(1, keepdim=True)).clamp_min(0)
            nearest = squared.topk(neighbours, dim=1, largest=False).values.sqrt().mean(1)
            return nearest.view(count, height, width)

    def make(size):
        detector = FusionDetector(image_size=size)
        old = detector.bank
        detector.bank = _KnnBank(old.dimensions, old.coreset, old.candidates, old.keep_all, old.device)
        return detector
    return make


def _top_share(share):
    """The default with each patch map's evidence the mean of its largest ``share`` of pixels
    instead of its single largest value."""
    class _TopShare(FusionDetector):
        @staticmethod
        def _peaks(maps):
            flat = maps.flatten(1)
            return flat.topk(max(1, round(share * flat.shape[1])), dim=1).values.mean(1)
    return lambda size: _TopShare(image_size=size)


def _bank_candidates(count):
    """The default with the memory bank's coreset chosen among ``count`` random patches
    (the default's ``CANDIDATES``): a fit-time knob."""
    def make(size):
        detector = FusionDetector(image_size=size)
        detector.bank.candidates = int(count)
        return detector
    return make


def _position_sample(sample):
    """The default with the fold position statistics from ``sample`` training images (the
    default's ``POSITION_SAMPLE``): a fit-time knob."""
    def make(size):
        detector = FusionDetector(image_size=size)
        detector.position_sample = int(sample)
        return detector
    return make


# The spatial levels cached: stride 8 (blocks.2, 40 ch) and both stride-16 stages (blocks.3, 80 ch; blocks.4, 112 ch).
CACHED_LEVELS = (3, 4, 5)


def _with_levels(cls, levels, **options):
    """A detector whose patch evidences use backbone ``levels`` (a subset of :data:`CACHED_LEVELS`)."""
    def make(size):
        detector = cls(image_size=size, **options)
        channels = {3: 40, 4: 80, 5: 112}
        detector.patch_map = PatchMapModel(levels, [channels[level] for level in levels], detector.device)
        return detector
    return make


def _with_sigma(cls, sigma):
    def make(size, **options):
        detector = cls(image_size=size, **options)
        detector.patch_map.sigma = sigma
        return detector
    return make


LEGACY = dict(bank_stride=LEGACY_BANK["stride"], bank_border=LEGACY_BANK["border"], bank_edge=LEGACY_BANK["edge"])
VARIANTS = {
    "default": lambda size: FusionDetector(image_size=size),
    # The default before the per-cell bank joined it: what every "default" row measured at 224 px was.
    "three": lambda size: FusionDetector(image_size=size, components=THREE_COMPONENTS),
    "legacy-bank": lambda size: FusionDetector(image_size=size, **LEGACY),
    "stride8": lambda size: FusionDetector(image_size=size, bank_stride=8),
    "stride8-noshrink": lambda size: FusionDetector(image_size=size, bank_stride=8, bank_border="none"),
    "coreset6k": lambda size: FusionDetector(image_size=size, bank_coreset=6000),
    "dims120": lambda size: FusionDetector(image_size=size, bank_dimensions=120),
    "maxz": lambda size: _MaxFusion(image_size=size),
    "soft1": lambda size: _soft_max_fusion(1.0)(image_size=size),
    "no-global": lambda size: FusionDetector(image_size=size, components=("position", "bank")),
    "no-position": lambda size: FusionDetector(image_size=size, components=("global", "bank")),
    "no-bank": lambda size: FusionDetector(image_size=size, components=("global", "position")),
    "bank-only": lambda size: FusionDetector(image_size=size, components=("bank",)),
    "legacy-bank-only": lambda size: FusionDetector(image_size=size, components=("bank",), **LEGACY),
    "position-only": lambda size: FusionDetector(image_size=size, components=("position",)),
    "global-only": lambda size: FusionDetector(image_size=size, components=("global",)),
    "sigma2": lambda size: _with_sigma(FusionDetector, 2.0)(size),
    "sigma3": lambda size: _with_sigma(FusionDetector, 3.0)(size),
    "sigma6": lambda size: _with_sigma(FusionDetector, 6.0)(size),
    "sigma8": lambda size: _with_sigma(FusionDetector, 8.0)(size),
    "no-edge": lambda size: FusionDetector(image_size=size, bank_edge=0),
    "edge1": lambda size: FusionDetector(image_size=size, bank_edge=1),
    "edge3": lambda size: FusionDetector(image_size=size, bank_edge=3),
    "map-mean": lambda size: FusionDetector(image_size=size, map_bank_weight=0.5),
    "map-bank-only": lambda size: FusionDetector(image_size=size, map_bank_weight=1.0),
    "reweight9": lambda size: _reweighted(9)(image_size=size),
    "reweight9-bank-only": lambda size: _reweighted(9)(image_size=size, components=("bank",)),
    "w-bank2": _weighted(1, 1, 2),
    "w-bank1.5": _weighted(1, 1, 1.5),
    "w-pos0.5": _weighted(1, 0.5, 1),
    "w-bank3": _weighted(1, 1, 3),
    "w-pos0.5-bank1.5": _weighted(1, 0.5, 1.5),
    "w-pos0.5-bank2": _weighted(1, 0.5, 2),
    "w-global1.5": _weighted(1.5, 1, 1),
    "plus-local": _plus_local(),
    "plus-local-soft1": lambda size: _soft_max_fusion(1.0)(image_size=size, components=WITH_LOCAL),
    "plus-local-soft2": lambda size: _soft_max_fusion(2.0)(image_size=size, components=WITH_LOCAL),
    "plus-local-r1": _plus_local(local_radius=1),
    "plus-local-r3": _plus_local(local_radius=3),
    "plus-local-keep64": _plus_local(local_keep=64),
    "plus-local-keepall": _plus_local(local_keep=100000),
    "envelope": _envelope_fusion(),
    "min-variance": _min_variance_fusion(),
    "plus-local-envelope": _envelope_fusion(WITH_LOCAL),
    "local-not-position": lambda size: FusionDetector(image_size=size, components=("global", "bank", "local")),
    "L35": _with_levels(FusionDetector, (3, 5)),
    "L345": _with_levels(FusionDetector, (3, 4, 5)),
    "knn3": _knn_bank(3),
    "knn9": _knn_bank(9),
    "top0.2": _top_share(0.002),
    "top1": _top_share(0.01),
    "cand40k": _bank_candidates(40000),
    "cand30k": _bank_candidates(30000),
    "pos100": _position_sample(100),
}


def build(name: str, size: int) -> FusionDetector:
    """The detector of variant ``name``."""
    return VARIANTS[name](size)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--cache", default="/tmp/fusion-cache")
    parser.add_argument("--categories", nargs="*")
    parser.add_argument("--variants", nargs="*", default=["default"])
    parser.add_argument("--half", choices=("tune", "held", "all"), default="tune")
    parser.add_argument("--image-size", type=int, default=MIN_IMAGE_SIZE,
                        help="input side (default: the fusion default on Lite0, 256; the README's earlier "
                             "tables were at 224 with --variants three for their 'default')")
    parser.add_argument("--limit-train", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args()
    tune_malloc()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    results: dict = {}
    for path in find_categories(args.root):
        category = load_category(path)
        if args.categories and category.name not in args.categories:
            continue
        data = extract(category, Path(args.cache), args.image_size)
        rows = halves(len(data["labels"]), category.name)[args.half]
        pooled, spatial = data["train"]
        if args.limit_train and args.limit_train < len(pooled[0]):
            # Evenly spread over the (sorted) training images, as bench_peers.py's --limit-train:
            # the first N of a sorted folder can be an unrepresentative run of similar parts.
            keep = np.linspace(0, len(pooled[0]) - 1, args.limit_train).round().astype(int)
            pooled = [level[keep] for level in pooled]
            spatial = [m[torch.as_tensor(keep)] for m in spatial]
        for variant in args.variants:
            detector = build(variant, args.image_size)
            chosen = [CACHED_LEVELS.index(level) for level in detector.patch_map.levels]
            train_spatial = [spatial[i] for i in chosen]
            test_data = dict(data, test=(data["test"][0], [data["test"][1][i] for i in chosen]))
            tick = time.perf_counter()
            detector.fit_extracted(pooled, train_spatial, silent())
            fit_s = time.perf_counter() - tick
            metrics = evaluate(detector, test_data, rows)
            metrics["fit_s"] = fit_s
            results.setdefault(variant, {})[category.name] = metrics
            print(f"{category.name:16s} {variant:14s} " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()),
                  flush=True)
    print()
    print(f"{'variant':14s} {'image':>6s} {'real':>6s} {'pixel':>6s} {'aupro':>6s}   (means over sets; real = elpv-*)")
    for variant, per_set in results.items():
        def mean(key, only=None):
            values = [m[key] for n, m in per_set.items() if key in m and (only is None or only(n))]
            return float(np.mean(values)) if values else float("nan")
        print(f"{variant:14s} {mean('image'):6.3f} {mean('image', lambda n: n.startswith('elpv')):6.3f} "
              f"{mean('pixel'):6.3f} {mean('aupro'):6.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
