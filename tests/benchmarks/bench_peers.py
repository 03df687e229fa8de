"""Inspector against anomalib's PatchCore, PaDiM and DFM on the same backbone, the same pixels and the same metrics.

    python tests/benchmarks/bench_peers.py ROOT [--methods patchcore padim dfm inspector]
                                    [--inspector-detector NAME [NAME ...]] [--inspector-runtime torch auto ...]
                                    [--categories NAME ...]
                                    [--image-size 256] [--limit-train N] [--threads 2] [--device cpu|cuda]
                                    [--latency-frames 20] [--batch-repeats 3] [--weights-source inspector|file]
                                    [--seed 0] [--json PATH] [--no-malloc-tuning]

ROOT is an MVTec-AD-layout folder: one category (it has ``train/good``) or a folder
of categories. Per category every method is fitted on the same good images, then
scores and maps every test image; the methods run in one process, one category
after the other, so that they share the machine's state. Per category and method
it prints image AUROC, pixel AUROC and AUPRO (FPR up to 30 %) where the category
has masks, the batch-1 latency (median ms), the batch-16 throughput (images/s) and
the fit time (s), and then the mean over categories; ``--json`` also writes them.
Inspector decides as the station does (``inspect(frames, maps="fast")``: score and
fast map from one pass), once on torch and once on the runtime the station picks for a
``.safetensors`` file (``@auto``, onnxruntime when installed; ``--inspector-runtime``).
All metrics come from :mod:`inspector.metrics`, so every method is measured by the
same code. Needs anomalib and timm (benchmark-only dependencies; Inspector itself
never imports them).

The peers are anomalib's torch models, built directly (no Lightning engine):

* ``patchcore``: ``PatchcoreModel(layers=["blocks.2", "blocks.4"], num_neighbors=9)``,
  the memory bank subsampled with k-center greedy coreset to 1 % (``coreset_sampling_ratio=0.01``).
* ``padim``: ``PadimModel(layers=["blocks.2", "blocks.4"], n_features=152)``: anomalib has
  no ``n_features`` default for this backbone, and 40 + 112 = 152 channels are few enough
  to keep them all (no random channel selection).
* ``dfm``: ``DFMModel(layer="blocks.4")`` with anomalib's defaults otherwise (average pooling
  4, PCA keeping 97 % of the variance, feature-reconstruction-error score). DFM is meant
  for one layer; its default ``layer3`` of ResNet-50 has stride 16, and so has ``blocks.4``.
  Its map is therefore coarse (the pooled 16x16 grid at 256 px is 4x4).

``blocks.2`` and ``blocks.4`` are the outputs of stages 3 and 5 of EfficientNet-Lite0
(40 and 112 channels, stride 8 and 16). Every method uses timm's ``tf_efficientnet_lite0``
(TensorFlow 'SAME' padding, BN eps 1e-3, ReLU6) filled with the EfficientNet-Lite0 ImageNet
weights Inspector runs with: by default the state of Inspector's own built backbone
(``--weights-source inspector``, so that every method computes exactly Inspector's
features), or the packaged weights file as it is (``--weights-source file``). The two
differ while ``build_backbone`` probes level shapes with a forward pass in training mode,
which moves every BatchNorm's running statistics a step (momentum 0.01) towards those of
a zero image; the script prints how many tensors differ and what that does to the logits. At start
the script loads the weights strictly into the full timm classifier and aborts unless
its ImageNet logits equal those of Inspector's backbone holding the same state
(``build_backbone("lite0").classify``) on the same normalized input, and unless the
features of each peer's extractor equal Inspector's stage 3 and 5 features at the
chosen image size (only warned about when the size is not a multiple of 32: there
Inspector's padding, computed once for 224 px, differs from TensorFlow's 'SAME').

Every method sees the same pixels: the whole image stretched to ``--image-size``
squared and normalized with mean = std = 0.5 per RGB channel
(:class:`inspector.backbones.preprocessing.Preprocessing`, as Inspector does). anomalib's
maps, at the input size, are stretched back to the image geometry before the pixel
metrics; Inspector's ``Heatmap.values`` already are in it.

Inspector methods are ``InspectionModel.fit(train)`` with the detector named by
``--inspector-detector`` (default: ``fit``'s own default); several names give several
Inspector methods (``inspector:NAME``). Scores are ``score_images``, maps
``heatmaps(method="fast")`` (only when the model offers a fast map). Fit times include
everything the call does (for Inspector also its k-fold calibration).

Timing is what a station pays per frame: score plus fast map of one frame, from the
uint8 image to the score and the map in the frame's geometry. For Inspector that is
``score_images([frame])`` then ``heatmaps([frame])``, as its station calls them; for
anomalib one forward that gives ``pred_score`` and ``anomaly_map`` plus the resize of the
map. The latency is the median over ``--latency-frames`` test frames with the methods
interleaved frame by frame (in rotating order), so that noise from other processes
hits all alike; the throughput is 16 images per call, median of ``--batch-repeats``
calls per method, also interleaved. ``--limit-train N`` fits on N good images evenly
spaced over the training set. Seeds are fixed (coreset start and projection).

After each category, every Inspector method's image AUROC minus each peer's is printed with a
95 % paired bootstrap interval (the same resampled test images for both, good and defective
images resampled separately): a difference whose interval spans 0 is not one the test set
can tell apart. ``--json`` keeps them as ``minus_peers``.

PaDiM's Gaussian fit (per-position covariances and one batched ``torch.linalg.inv``)
runs on one thread on the CPU: with this torch build's MKL, batched inversion with more
than one thread fails ("Pivots given to lu_solve must all be greater or equal to 1").

anomalib's extractor is timm's ``features_only`` model, which runs all seven stages even
though only stages 3 and 5 are used; the timings include that, as anomalib's would.

On a 2-core machine shared with other work, PatchCore's coreset selection on hundreds
of training images takes minutes, and with 2 torch threads a process that keeps one core
busy makes every parallel region wait for a descheduled thread: batch-1 latencies of
seconds instead of tens of ms. Compare with ``--threads 1`` before reading the timings.
Like ``inspector speed``, glibc's allocator is tuned first unless ``--no-malloc-tuning``.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import os
import random
import sys
import time
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")  # before anything imports tqdm: anomalib's coreset progress bar

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inspector.core.thread_tuning import tune_threads

tune_threads()  # as the `inspector` command does, for every method alike (INSPECTOR_THREAD_TUNING=0: off)
import torch  # noqa: E402  (after the thread tuning: OpenMP reads its wait policy when torch loads)

from inspector.backbones.efficientnet import build_backbone
from inspector.backbones.preprocessing import Preprocessing
from inspector.backbones.weights import load_state_dict, packaged_weights_path
from inspector.core.imageio import read_image
from inspector.core.malloc_tuning import tune_malloc
from inspector.core.records import Frame
from inspector.pipeline.model import InspectionModel
from inspector.datasets.mvtec import find_categories, load_category, load_mask
from inspector.metrics.image import auroc, auroc_difference
from inspector.metrics.pixel import aupro, pixel_auroc
from inspector.segmentation.geometry import to_frame_geometry

PEERS = ("patchcore", "padim", "dfm")
TIMM_NAME = "tf_efficientnet_lite0"
LAYERS = ["blocks.2", "blocks.4"]  # stage 3 (stride 8) and stage 5 (stride 16)
INSPECTOR_LEVELS = {"blocks.2": 3, "blocks.4": 5}  # the same outputs in Inspector's level numbering
DFM_LAYER = "blocks.4"
CORESET_RATIO = 0.01
NUM_NEIGHBORS = 9
PADIM_FEATURES = 152
STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
BATCH = 16
LOGIT_TOLERANCE = 1e-3
FEATURE_TOLERANCE = 1e-3
FPR_LIMIT = 0.3
BOOTSTRAP = 2000
"""Resamples of the paired bootstrap of image-AUROC differences."""


# ---- weights --------------------------------------------------------------------------------

def timm_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """efficientnet-pytorch keys of a Lite0 state dict renamed to timm's ``tf_efficientnet_lite0`` keys."""
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    first = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    other = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
    starts = np.cumsum((0, *STAGE_DEPTHS))
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            index = int(parts[1])
            stage = int(np.searchsorted(starts, index, side="right")) - 1
            table = first if index == 0 else other
            name = ["blocks", str(stage), str(index - starts[stage]), table[parts[2]], *parts[3:]]
        else:
            name = [top[parts[0]], *parts[1:]]
        out[".".join(name)] = value
    return out


def fill_extractor(extractor: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load the renamed weights into a timm ``features_only`` model; every tensor of it must be filled."""
    own = extractor.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise SystemExit(f"the Lite0 weights lack {len(missing)} tensors of the timm extractor, e.g. {missing[:3]}")
    extractor.load_state_dict({key: state[key] for key in own}, strict=True)
    for key, value in extractor.state_dict().items():
        if not torch.equal(value.cpu(), state[key].cpu()):
            raise SystemExit(f"timm extractor tensor {key} was not filled")
    extractor.eval()
    for parameter in extractor.parameters():
        parameter.requires_grad_(False)


def inspector_state() -> dict[str, torch.Tensor]:
    """The state of the Lite0 network Inspector builds (efficientnet-pytorch keys)."""
    return {k: v.detach().cpu().clone() for k, v in build_backbone("lite0").net.state_dict().items()}


def reference_backbone(state: dict[str, torch.Tensor], device: torch.device | str = "cpu"):
    """Inspector's Lite0 backbone (efficientnet-pytorch, as Inspector builds it) holding ``state``."""
    backbone = build_backbone("lite0", device=device)
    backbone.net.load_state_dict(state, strict=True)
    return backbone


def check_weights(image: np.ndarray, state: dict[str, torch.Tensor]) -> dict:
    """ImageNet logits of timm's Lite0 against Inspector's backbone, both holding ``state``.

    Also reports how Inspector's backbone as built differs from the packaged file, and
    what timm with the file's weights gives against it.
    """
    import timm

    built = build_backbone("lite0")
    file_state = load_state_dict(packaged_weights_path("lite0"))
    x = Preprocessing(image_size=224).to_tensor([image])
    report = {}
    pairs = (("checked", state, reference_backbone(state)), ("packaged file vs Inspector as built", file_state, built))
    for name, source, backbone in pairs:
        net = timm.create_model(TIMM_NAME, pretrained=False).eval()
        net.load_state_dict(timm_state_dict(source), strict=True)
        with torch.inference_mode():
            ours, theirs = net(x), backbone.classify(x)
        report[name] = {
            "max_abs_logit_diff": float((ours - theirs).abs().max()),
            "max_abs_logit": float(theirs.abs().max()),
            "top1_timm": int(ours.argmax()), "top1_inspector": int(theirs.argmax()),
        }
    changed = [k for k, v in built.net.state_dict().items() if not torch.equal(v.cpu(), file_state[k])]
    report["tensors_differing_from_file"] = len(changed)
    report["tensors_differing_from_file_examples"] = changed[:4]
    return report


def check_features(method: "PeerMethod", image: np.ndarray, state: dict[str, torch.Tensor]) -> float:
    """Largest difference between a peer's extractor features and Inspector's backbone's (same state)."""
    backbone = reference_backbone(state, method.device)
    x = method.tensor([image])
    with torch.inference_mode():
        theirs = method.model.feature_extractor(x)
        ours = backbone(x, upto=max(INSPECTOR_LEVELS.values()))
    worst = 0.0
    for layer, features in theirs.items():
        reference = ours[INSPECTOR_LEVELS[layer]]
        if features.shape != reference.shape:
            raise SystemExit(f"{method.name}: {layer} has shape {tuple(features.shape)}, "
                             f"Inspector's level {INSPECTOR_LEVELS[layer]} {tuple(reference.shape)}")
        worst = max(worst, float((features - reference).abs().max()))
    return worst


# ---- methods --------------------------------------------------------------------------------

class PeerMethod:
    """One of anomalib's torch models with the Lite0 weights, fitted and run without Lightning."""

    def tensor(self, images: list[np.ndarray]) -> torch.Tensor:
        """Inspector's preprocessing, made contiguous NCHW (as torchvision's pipeline gives).

        Inspector's tensor is a permuted NHWC array (channels-last strides), which DFM's
        ``features.view(batch, -1)`` cannot take.
        """
        return self.preprocessing.to_tensor(images, self.device).contiguous()

    def __init__(self, kind: str, image_size: int, device: torch.device, state: dict[str, torch.Tensor]) -> None:
        self.name = kind
        self.kind = kind
        self.device = device
        self.preprocessing = Preprocessing(image_size=image_size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "patchcore":
                from anomalib.models.image.patchcore.torch_model import PatchcoreModel

                model = PatchcoreModel(layers=list(LAYERS), backbone=TIMM_NAME, pre_trained=False,
                                       num_neighbors=NUM_NEIGHBORS)
            elif kind == "padim":
                from anomalib.models.image.padim.torch_model import PadimModel

                model = PadimModel(backbone=TIMM_NAME, layers=list(LAYERS), pre_trained=False,
                                   n_features=PADIM_FEATURES)
            elif kind == "dfm":
                from anomalib.models.image.dfm.torch_model import DFMModel

                model = DFMModel(backbone=TIMM_NAME, layer=DFM_LAYER, pre_trained=False)
            else:
                raise ValueError(kind)
        fill_extractor(model.feature_extractor.feature_extractor, timm_state_dict(state))
        self.model = model.to(device)

    def fit(self, images: list[np.ndarray]) -> None:
        model = self.model
        model.train()  # anomalib's models collect training embeddings in train mode (extractor stays in eval)
        with torch.no_grad():
            for start in range(0, len(images), BATCH):
                model(self.tensor(images[start:start + BATCH]))
            if self.kind == "patchcore":
                model.subsample_embedding(CORESET_RATIO)
            elif self.kind == "padim" and self.device.type == "cpu":
                # torch's batched CPU torch.linalg.inv (MKL LU) fails with more than one thread here
                # ("oneMKL ERROR: Parameter 6 was incorrect on entry to SLASWP"); one thread works.
                threads = torch.get_num_threads()
                torch.set_num_threads(1)
                try:
                    model.fit()
                finally:
                    torch.set_num_threads(threads)
            else:
                model.fit()
        model.eval()

    def score_and_maps(self, images: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray] | None]:
        with torch.inference_mode():
            out = self.model(self.tensor(images))
            scores = out.pred_score.float().reshape(len(images)).cpu().numpy()
            raw = out.anomaly_map.float().reshape(len(images), *out.anomaly_map.shape[-2:]).cpu().numpy()
        return scores, [to_frame_geometry(m, image.shape) for m, image in zip(raw, images)]


class InspectorMethod:
    """Inspector's public model API with a named (or the default) detector, deciding as the
    station does: ``inspect(frames, maps="fast")``, score and fast map from one backbone pass."""

    def __init__(self, detector: str | None, image_size: int, device: torch.device) -> None:
        self.detector = detector
        self.name = f"inspector:{detector}" if detector else "inspector"
        self.image_size = image_size
        self.device = device
        self.model = None
        self.has_maps = False

    def fit(self, images: list[np.ndarray]) -> None:
        options = {"detector": self.detector} if self.detector else {}
        self.model = InspectionModel.fit(images, image_size=self.image_size, device=self.device, **options)
        self.has_maps = "fast" in self.model.supported_segmenters

    def score_and_maps(self, images: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray] | None]:
        frames = [Frame(image, "bench", i) for i, image in enumerate(images)]
        results = self.model.inspect(frames, maps="fast" if self.has_maps else None)
        scores = np.array([r.raw_score for r in results], dtype=np.float64)
        if not self.has_maps:
            return scores, None
        return scores, [r.heatmap.values for r in results]


class AcceleratedInspectorMethod(InspectorMethod):
    """The fitted model of an :class:`InspectorMethod` on another runtime (``accelerate``), as the
    station runs a ``.safetensors`` file by default; fitting is the torch fit plus export and parity."""

    def __init__(self, base: InspectorMethod, runtime: str, threads: int) -> None:
        super().__init__(base.detector, base.image_size, base.device)
        self.base, self.runtime, self.threads = base, runtime, threads
        self.name = f"{base.name}@{runtime}"

    def fit(self, images: list[np.ndarray]) -> None:
        from inspector.export.accelerated import accelerate

        self.model, choice = accelerate(self.base.model, self.runtime, threads=self.threads, cache=False)
        self.has_maps = self.base.has_maps
        print(f"   {self.name}: {choice.line()}", flush=True)


# ---- measuring -------------------------------------------------------------------------------

@dataclass
class Row:
    image_auroc: float | None = None
    pixel_auroc: float | None = None
    aupro: float | None = None
    latency_ms: float | None = None
    throughput: float | None = None
    fit_s: float | None = None
    notes: list[str] = field(default_factory=list)
    scores: np.ndarray | None = None  # per test image, for the paired differences
    differences: dict[str, list[float]] = field(default_factory=dict)  # peer -> [difference, low, high]


def spread(items: list, count: int | None) -> list:
    """``count`` items evenly spaced over ``items`` (all when ``count`` is None or not smaller)."""
    if count is None or count >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def cycle(items: list, count: int) -> list:
    return [items[i % len(items)] for i in range(count)]


def evaluate(method, images, labels, masks, pixel_index, row: Row) -> None:
    scores, maps = [], []
    for start in range(0, len(images), BATCH):
        s, m = method.score_and_maps(images[start:start + BATCH])
        scores.append(s)
        if m is None:
            maps = None
        elif maps is not None:
            maps.extend(m[i - start] for i in pixel_index if start <= i < start + BATCH)
    scores = np.concatenate(scores)
    if not np.isfinite(scores).all():
        row.notes.append("non-finite scores")
        return
    try:
        row.image_auroc = auroc(labels, scores)
        row.scores = scores
    except ValueError as exc:
        row.notes.append(f"image AUROC: {exc}")
    if maps is None:
        if pixel_index:
            row.notes.append("no map")
        return
    if pixel_index:
        try:
            row.pixel_auroc = pixel_auroc(masks, maps)
            row.aupro = aupro(masks, maps, fpr_limit=FPR_LIMIT)
        except ValueError as exc:
            row.notes.append(f"pixel metrics: {exc}")


def time_latency(methods, frames, rows) -> None:
    for method in methods:  # warm-up: first calls allocate and pick kernels
        for frame in frames[:2]:
            method.score_and_maps([frame])
    times = {m.name: [] for m in methods}
    for i, frame in enumerate(frames):
        for k in range(len(methods)):
            method = methods[(i + k) % len(methods)]
            start = time.perf_counter()
            method.score_and_maps([frame])
            times[method.name].append(time.perf_counter() - start)
    for method in methods:
        rows[method.name].latency_ms = float(np.median(times[method.name]) * 1000.0)


def time_throughput(methods, batch, repeats, rows) -> None:
    for method in methods:
        method.score_and_maps(batch)
    times = {m.name: [] for m in methods}
    for i in range(repeats):
        for k in range(len(methods)):
            method = methods[(i + k) % len(methods)]
            start = time.perf_counter()
            method.score_and_maps(batch)
            times[method.name].append(time.perf_counter() - start)
    for method in methods:
        rows[method.name].throughput = float(len(batch) / np.median(times[method.name]))


def seed_everything(seed: int) -> None:
    """Seed every generator a method may draw from before its fit: torch's, and NumPy's and
    Python's global ones (anomalib's sparse random projection for PatchCore's coreset draws from
    NumPy's, so a torch seed alone leaves PatchCore's result to whatever ran before it)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def run_category(path: Path, args, names: list[str], state, device, checked: dict) -> dict[str, Row]:
    category = load_category(path)
    train_paths = spread(category.train_good, args.limit_train)
    train = [read_image(p) for p in train_paths]
    images = [read_image(item.path) for item in category.test]
    labels = np.array([item.label for item in category.test])
    has_masks = any(item.label == 1 and item.mask_path is not None for item in category.test)
    pixel_index = [i for i, item in enumerate(category.test)
                   if has_masks and (item.label == 0 or item.mask_path is not None)]
    masks = [load_mask(category.test[i], images[i].shape) for i in pixel_index]
    print(f"\n== {category.name}: {len(train)} of {len(category.train_good)} train images, {len(images)} test "
          f"({int(labels.sum())} defective, {len(pixel_index) if has_masks else 0} with masks for pixel metrics)",
          flush=True)
    if not images:
        print("   no test images, skipped")
        return {}

    methods = []
    for name in names:
        if name in PEERS:
            methods.append(PeerMethod(name, args.image_size, device, state))
        else:
            base_name, _, runtime = name.partition("@")
            detector = base_name.split(":", 1)[1] if ":" in base_name else None
            if runtime:
                base = next(m for m in methods if m.name == base_name)
                methods.append(AcceleratedInspectorMethod(base, runtime, args.threads))
            else:
                methods.append(InspectorMethod(detector, args.image_size, device))
    rows = {m.name: Row() for m in methods}
    for method in methods:
        if isinstance(method, PeerMethod) and method.name not in checked:
            checked[method.name] = diff = check_features(method, train[0], state)
            if diff > FEATURE_TOLERANCE:
                message = (f"{method.name}: its extractor's features differ from Inspector's by {diff:.3g} "
                           f"at {args.image_size} px")
                if args.image_size % 32 == 0:
                    raise SystemExit(f"ABORT: {message}")
                print(f"   WARNING: {message} (size not a multiple of 32: padding differs)")
        seed_everything(args.seed)
        start = time.perf_counter()
        method.fit(train)
        rows[method.name].fit_s = time.perf_counter() - start
        if isinstance(method, AcceleratedInspectorMethod):
            rows[method.name].fit_s += rows[method.base.name].fit_s
        print(f"   {method.name}: fitted in {rows[method.name].fit_s:.1f} s", flush=True)
    for method in methods:
        evaluate(method, images, labels, masks, pixel_index, rows[method.name])
    time_latency(methods, cycle(images, args.latency_frames), rows)
    time_throughput(methods, cycle(images, BATCH), args.batch_repeats, rows)
    for method in methods:
        print("   " + format_row(method.name, rows[method.name]), flush=True)
    for name, peers in differences(labels, rows).items():
        rows[name].differences = peers
        print("   " + difference_line(name, peers), flush=True)
    del methods
    gc.collect()
    return rows


def differences(labels: np.ndarray, rows: dict[str, Row]) -> dict[str, dict[str, list[float]]]:
    """Per Inspector method and peer: image AUROC of Inspector minus the peer's on the same test
    images, and its 95 % paired bootstrap interval (:func:`inspector.metrics.image.auroc_difference`)."""
    out = {}
    for name, row in rows.items():
        if name in PEERS or row.scores is None:
            continue
        out[name] = {peer: list(auroc_difference(labels, row.scores, rows[peer].scores, BOOTSTRAP))
                     for peer in PEERS if peer in rows and rows[peer].scores is not None}
    return out


def difference_line(name: str, peers: dict[str, list[float]]) -> str:
    parts = [f"{peer} {d:+.3f} [{low:+.3f}, {high:+.3f}]" for peer, (d, low, high) in peers.items()]
    return f"{name} minus: " + ", ".join(parts) + f" (image AUROC, 95 % paired bootstrap, {BOOTSTRAP} resamples)"


# ---- output ----------------------------------------------------------------------------------

COLUMNS = ("image_auroc", "pixel_auroc", "aupro", "latency_ms", "throughput", "fit_s")
HEADER = f"{'method':<22}{'img AUROC':>10}{'pix AUROC':>10}{'AUPRO':>8}{'b1 ms':>9}{'b16 img/s':>11}{'fit s':>8}"


def _cell(value, width, digits):
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def format_row(name: str, row: Row) -> str:
    text = (f"{name:<22}{_cell(row.image_auroc, 10, 3)}{_cell(row.pixel_auroc, 10, 3)}{_cell(row.aupro, 8, 3)}"
            f"{_cell(row.latency_ms, 9, 1)}{_cell(row.throughput, 11, 1)}{_cell(row.fit_s, 8, 1)}")
    return text + (f"  ({'; '.join(row.notes)})" if row.notes else "")


def mean_rows(results: dict[str, dict[str, Row]], names: list[str]) -> dict[str, Row]:
    means = {}
    for name in names:
        row = Row()
        for column in COLUMNS:
            values = [getattr(r[name], column) for r in results.values() if name in r]
            values = [v for v in values if v is not None]
            setattr(row, column, float(np.mean(values)) if values else None)
            if values and len(values) < len(results):
                row.notes.append(f"{column} over {len(values)} of {len(results)}")
        means[name] = row
    return means


def print_table(results, means, names) -> None:
    print("\n" + HEADER)
    for category, rows in results.items():
        print(f"[{category}]")
        for name in names:
            if name in rows:
                print(format_row(name, rows[name]))
    print(f"[mean over {len(results)} categories]")
    for name in names:
        print(format_row(name, means[name]))


def as_dict(row: Row) -> dict:
    return ({column: getattr(row, column) for column in COLUMNS} | ({"notes": row.notes} if row.notes else {})
            | ({"minus_peers": row.differences} if row.differences else {}))


# ---- main ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    fit_default = inspect.signature(InspectionModel.fit).parameters["detector"].default
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="MVTec-AD-layout dataset root or one category folder")
    parser.add_argument("--methods", nargs="+", default=[*PEERS, "inspector"],
                        choices=[*PEERS, "inspector"], help="methods to run (default: all)")
    parser.add_argument("--inspector-detector", nargs="+", default=None, metavar="NAME",
                        help=f"Inspector detector(s) passed as detector= to fit (default: fit's, now {fit_default!r})")
    parser.add_argument("--inspector-runtime", nargs="+", default=["torch", "auto"],
                        choices=("torch", "auto", "onnx", "openvino"),
                        help="runtimes each Inspector detector is timed on (default: torch and auto, the "
                             "station's default, each a row; 'auto' etc. reuse the torch fit)")
    parser.add_argument("--categories", nargs="+", default=None, metavar="NAME", help="subset of categories")
    parser.add_argument("--image-size", type=int, default=256,
                        help="square network input side (default 256: Inspector's default detector's input)")
    parser.add_argument("--limit-train", type=int, default=None, metavar="N",
                        help="fit on N good images evenly spaced over train/good")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--device", default="cpu", help="torch device for all methods (default cpu)")
    parser.add_argument("--latency-frames", type=int, default=20, help="frames timed at batch 1 (default 20)")
    parser.add_argument("--batch-repeats", type=int, default=3, help="timed batch-16 calls per method (default 3)")
    parser.add_argument("--weights-source", choices=("inspector", "file"), default="inspector",
                        help="Lite0 state for the peers: Inspector's built backbone (default) or the packaged file")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc's allocation defaults")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of every random generator before each fit (PatchCore's coreset is random: "
                             "compare over several seeds)")
    args = parser.parse_args(argv)
    tuned = False if args.no_malloc_tuning else tune_malloc()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    warnings.filterwarnings("ignore", category=FutureWarning)
    # subsample_embedding's deprecation decorator warns even when the deprecated argument is not given
    warnings.filterwarnings("ignore", message="Argument embeddings is deprecated")

    try:
        paths = find_categories(args.root)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.categories:
        unknown = sorted(set(args.categories) - {p.name for p in paths})
        if unknown:
            print(f"error: no category {', '.join(unknown)} in {args.root}", file=sys.stderr)
            return 2
        paths = [p for p in paths if p.name in args.categories]

    names = [m for m in dict.fromkeys(args.methods) if m in PEERS]
    if "inspector" in args.methods:
        bases = [f"inspector:{d}" for d in args.inspector_detector] if args.inspector_detector else ["inspector"]
        for base in bases:
            names += [base] + [f"{base}@{r}" for r in dict.fromkeys(args.inspector_runtime) if r != "torch"]

    if args.weights_source == "inspector":
        state = inspector_state()
    else:
        state = load_state_dict(packaged_weights_path("lite0"))
    probe = read_image(load_category(paths[0]).train_good[0])
    check = check_weights(probe, state)
    checked = check["checked"]
    print(f"torch threads {torch.get_num_threads()}, device {device}, input {args.image_size} px, "
          f"malloc tuning {'on' if tuned else 'off'}, Inspector fit default detector {fit_default!r}")
    print(f"weights check ({args.weights_source} state in timm {TIMM_NAME} vs Inspector's backbone, 224 px): "
          f"max |logit diff| {checked['max_abs_logit_diff']:.2e} (logits up to {checked['max_abs_logit']:.1f}), "
          f"top-1 {checked['top1_timm']} / {checked['top1_inspector']}")
    if check["tensors_differing_from_file"]:
        packaged = check["packaged file vs Inspector as built"]
        examples = ", ".join(check["tensors_differing_from_file_examples"][:2])
        print(f"note: Inspector's built backbone differs from the packaged weights file in "
              f"{check['tensors_differing_from_file']} tensors (e.g. {examples}); with the file's "
              f"weights timm's logits differ from Inspector's by {packaged['max_abs_logit_diff']:.2e}")
    if checked["max_abs_logit_diff"] > LOGIT_TOLERANCE or checked["top1_timm"] != checked["top1_inspector"]:
        print("ABORT: timm's Lite0 with these weights does not reproduce Inspector's logits", file=sys.stderr)
        return 1

    started = time.perf_counter()
    results: dict[str, dict[str, Row]] = {}
    feature_checks: dict[str, float] = {}
    for path in paths:
        rows = run_category(path, args, names, state, device, feature_checks)
        if rows:
            results[path.name] = rows
    if not results:
        print("error: no category has test images", file=sys.stderr)
        return 2
    if feature_checks:
        print("\nfeature check (peer extractor vs Inspector's stage 3/5, max |diff|): "
              + ", ".join(f"{k} {v:.2e}" for k, v in feature_checks.items()))
    means = mean_rows(results, names)
    print_table(results, means, names)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")

    if args.json:
        payload = {
            "config": {
                "root": str(args.root), "methods": names, "image_size": args.image_size,
                "limit_train": args.limit_train, "threads": torch.get_num_threads(), "device": str(device),
                "latency_frames": args.latency_frames, "batch_repeats": args.batch_repeats, "batch": BATCH,
                "weights_source": args.weights_source, "fpr_limit": FPR_LIMIT, "layers": LAYERS,
                "dfm_layer": DFM_LAYER, "coreset_sampling_ratio": CORESET_RATIO, "num_neighbors": NUM_NEIGHBORS,
                "padim_n_features": PADIM_FEATURES, "inspector_fit_default_detector": fit_default,
                "seed": args.seed,
                "torch": torch.__version__,
            },
            "weights_check": check,
            "feature_check": feature_checks,
            "categories": {c: {n: as_dict(r) for n, r in rows.items()} for c, rows in results.items()},
            "mean": {n: as_dict(r) for n, r in means.items()},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
