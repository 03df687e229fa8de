"""The station on the fastest runtime: a torch model whose decisions and fast maps run on its exported graph.

:func:`accelerate` takes a loaded :class:`~inspector.pipeline.model.InspectionModel` and,
when it can, returns an :class:`AcceleratedModel`: the same model for everything that
needs torch (the gradient map on NG frames, refits, feedback, saving, ``info``, the
model hash), with :meth:`~AcceleratedModel.inspect`, the fast map and raw scores
answered by the exported graph on onnxruntime (or OpenVINO). Steps:

1. the graph comes from a cache, ``<data dir>/cache/exports/<model hash>-<version>.onnx``
   (:func:`cache_path`), written once by :func:`~inspector.export.onnx_export.export_onnx`
   (about 2 s for Lite0); with an active signature policy the cache is not trusted and
   the graph is exported anew into a private temporary folder at every load;
2. parity is checked at every load on a few frames (:func:`parity_frames`: the model's
   own reference images when its reference folder is still there, plus two fixed
   synthetic frames): raw scores within :data:`PARITY_RTOL` relative, the same verdicts,
   and fast maps within :data:`MAP_ATOL`;
3. otherwise the torch model is returned unchanged, with the reason: onnxruntime (or
   openvino) not installed, a masked model or a detector the export does not carry,
   a model on a GPU, a failed export, parity not met.

:class:`RuntimeChoice` says which runtime runs and why; callers log it in one line.
No Qt; torch only through the model given.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

import inspector
from inspector.core.paths import data_dir
from inspector.core.policy import Threshold
from inspector.core.records import Frame, Heatmap, InspectionResult
from inspector.export.metadata import FORMAT_VERSION

logger = logging.getLogger(__name__)

RUNTIME_NAMES = {"onnx": "onnxruntime", "openvino": "openvino", "torch": "torch"}
"""``--runtime`` value -> the engine's name in logs and records."""
AUTO_ORDER = ("onnx", "openvino")
"""What ``--runtime auto`` tries for a ``.safetensors`` model, in order (README "Deploying a model":
onnxruntime was the fastest measured on CPU with parity; OpenVINO next; torch when neither can run it)."""
PARITY_RTOL = 1e-4
"""Largest relative difference of raw scores between the graph and torch that is accepted."""
MAP_ATOL = 1e-3
"""Largest absolute difference of normalized fast maps (1.0 = the pixel threshold) accepted."""
PARITY_REFERENCES = 4
"""How many of the model's own reference images join the parity check (when still on disk)."""
CACHE_KEEP = 8
"""Cached graphs kept (the most recently used; about 30 MB each for Lite0), older ones removed."""
GRAPH_REVISION = 4
"""Bumped when :mod:`inspector.export.graph` computes differently, so that cached graphs are rebuilt."""


@dataclass(frozen=True)
class RuntimeChoice:
    """Which runtime answers a model's decisions, and why.

    Attributes:
        runtime: ``"onnxruntime"``, ``"openvino"`` or ``"torch"``.
        reason: One sentence: why this runtime (the fallback's cause when it is torch).
        graph: The ``.onnx`` file the decisions run on (``None`` on torch).
        probes: How many frames the parity check decided.
        worst: The largest relative raw-score difference seen in the check.
    """

    runtime: str
    reason: str
    graph: str | None = None
    probes: int = 0
    worst: float = 0.0

    def line(self) -> str:
        """The log line: ``runtime onnxruntime (...)`` or ``runtime torch: <reason>``."""
        if self.runtime == "torch":
            return f"runtime torch: {self.reason}"
        return (f"runtime {self.runtime} for decisions and the fast map ({self.reason}; parity on {self.probes} "
                f"frames, raw scores within {self.worst:.1e} relative); torch for the gradient map and refits")


class AccelerationError(ValueError):
    """An insisted runtime (``--runtime onnx|openvino``) cannot run this model; the message says why."""


# ---- the cache -----------------------------------------------------------------------------

def cache_dir() -> Path:
    """Where exported graphs of ``.safetensors`` models are kept: ``<data dir>/cache/exports``."""
    return data_dir() / "cache" / "exports"


def cache_path(model) -> Path:
    """The cached graph of ``model``: keyed by its content hash, Inspector's version and the export format."""
    version = inspector.__version__.replace(os.sep, "_")
    return cache_dir() / f"{model.model_hash[:32]}-v{version}-f{FORMAT_VERSION}r{GRAPH_REVISION}.onnx"


def cached_export(model, folder: Path | None = None) -> Path:
    """The graph of ``model``, exported now unless a cached one with its model hash is already there.

    Args:
        model: A fitted torch model (exportable: see :func:`inspector.export.onnx_export.check_exportable`).
        folder: Export here instead of the cache (always anew).

    Raises:
        ValueError, ImportError, OSError: from the export.
    """
    from inspector.export.onnx_export import export_onnx
    from inspector.export.onnx_runtime import onnx_metadata

    path = Path(folder) / "model.onnx" if folder is not None else cache_path(model)
    if folder is None and path.is_file():
        try:
            if onnx_metadata(path).get("model_hash") == model.model_hash:
                os.utime(path)  # most recently used: the last to be pruned
                return path
        except Exception as exc:  # noqa: BLE001 - a damaged file (protobuf's DecodeError, ...): export again
            logger.info("cached export %s unreadable (%s): exporting again", path, exc)
    path.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(model, path)  # atomic: a partial file, then a rename
    if folder is None:
        prune_cache(keep=CACHE_KEEP)
    return path


def prune_cache(keep: int = CACHE_KEEP) -> list[Path]:
    """Remove all but the ``keep`` most recently used cached graphs; returns the removed files.

    A file another process still runs is safe to remove: the engines hold the graph in memory.
    """
    try:
        cached = sorted(cache_dir().glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return []
    removed = []
    for stale in cached[keep:]:
        try:
            stale.unlink()
            removed.append(stale)
        except OSError:
            continue
    return removed


# ---- parity --------------------------------------------------------------------------------

def parity_frames(model, references: int = PARITY_REFERENCES) -> list[np.ndarray]:
    """Frames for the parity check: up to ``references`` of the model's own reference images
    (its ``reference_dir``, the first in natural order, when the folder is still readable), a
    mid-gray frame and a fixed noise frame (seed 0) at the input size.

    The synthetic frames are not parts: they check that the graph computes what torch computes
    on inputs far from the references (the noise frame is NG for every model seen so far).
    """
    from inspector.core.imageio import list_images, read_image

    size = int(model.detector.preprocessing.image_size)
    frames: list[np.ndarray] = []
    folder = (model.info or {}).get("reference_dir")
    if folder and references and os.path.isdir(folder):
        try:
            listed = list_images([folder], recursive=False).images
        except OSError:
            listed = []
        for path in listed:
            if len(frames) >= references:
                break
            try:
                frames.append(read_image(path))
            except Exception:  # noqa: BLE001 - an unreadable reference is skipped, the synthetic frames remain
                continue
    rng = np.random.default_rng(0)
    frames.append(np.full((size, size, 3), 128, np.uint8))
    frames.append(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return frames


def parity_problem(model, graph_model, images: Sequence[np.ndarray]) -> tuple[str | None, float]:
    """``(problem, worst)``: a sentence when ``graph_model`` does not decide ``images`` like ``model``
    (raw scores beyond :data:`PARITY_RTOL`, another verdict, fast maps beyond :data:`MAP_ATOL`), else ``None``;
    ``worst`` is the largest relative raw-score difference."""
    frames = [Frame(image, "parity", index) for index, image in enumerate(images)]
    maps = "fast" if "fast" in graph_model.supported_segmenters and "fast" in model.supported_segmenters else None
    expected = model.inspect(frames, maps=maps)
    got = graph_model.inspect(frames, maps=maps)
    want = np.array([r.raw_score for r in expected], np.float64)
    have = np.array([r.raw_score for r in got], np.float64)
    worst = float(np.max(np.abs(have - want) / np.maximum(np.abs(want), 1e-12)))
    if not np.isfinite(worst) or worst > PARITY_RTOL:
        return f"raw scores differ from torch's by {worst:.1e} relative (more than {PARITY_RTOL:g})", worst
    if [r.anomalous for r in got] != [r.anomalous for r in expected]:
        return "a verdict differs from torch's", worst
    if maps is not None:
        gap = max(float(np.max(np.abs(a.heatmap.values - b.heatmap.values))) for a, b in zip(got, expected))
        if not gap <= MAP_ATOL:
            return f"fast maps differ from torch's by {gap:.1e} (more than {MAP_ATOL:g})", worst
    return None, worst


# ---- the facade ----------------------------------------------------------------------------

class AcceleratedModel:
    """A torch model whose decisions run on its exported graph (same answers, within the parity tolerance).

    Everything but :meth:`inspect`, :meth:`score_images` and fast :meth:`heatmaps` is the torch
    model's: ``detector`` (the station tells a new model from a recalibration by it),
    ``calibration``, ``pixel_calibration``, ``info``, ``model_hash``, ``save``, the gradient
    map. Records carry the torch model's hash.

    Args:
        model: The :class:`~inspector.pipeline.model.InspectionModel`.
        graph_model: Its export open in an engine (:class:`~inspector.export.onnx_runtime.OnnxModel`
            or :class:`~inspector.export.openvino_runtime.OpenVinoModel`), deciding with the same calibration.
        choice: How it was chosen (for logs and ``info``).
    """

    def __init__(self, model, graph_model, choice: RuntimeChoice) -> None:
        self.torch_model = model
        self.graph_model = graph_model
        self.choice = choice

    # ---- what the torch model answers ----------------------------------------------------
    def __getattr__(self, name: str):
        # Only reached for attributes not defined here: the torch model's (device, regions, _model_view, ...).
        if name in ("torch_model", "graph_model", "choice"):
            raise AttributeError(name)
        return getattr(self.torch_model, name)

    @property
    def runtime(self) -> str:
        """The engine that decides: ``"onnxruntime"`` or ``"openvino"``."""
        return self.choice.runtime

    @property
    def detector(self):
        """The torch detector (identity kept across recalibrations, as the station expects)."""
        return self.torch_model.detector

    @property
    def calibration(self):
        """The torch model's calibration (the graph model decides with the same threshold)."""
        return self.torch_model.calibration

    @property
    def info(self) -> dict:
        """The torch model's info (saved with it; the runtime is :attr:`choice`, not stored there)."""
        return self.torch_model.info

    @property
    def model_hash(self) -> str:
        """The torch model's content hash (a recalibration changes it; records carry it)."""
        return self.torch_model.model_hash

    @property
    def decision(self) -> Threshold:
        """The calibrated threshold as the decision rule."""
        return self.torch_model.decision

    @property
    def threshold(self) -> float:
        """The calibrated raw threshold."""
        return self.torch_model.threshold

    @property
    def detector_kind(self) -> str:
        """The detector's registered name."""
        return self.torch_model.detector_kind

    @property
    def backbone(self) -> str | None:
        """The backbone's name."""
        return self.torch_model.backbone

    @property
    def supported_segmenters(self) -> tuple[str, ...]:
        """The torch model's maps: the fast one from the graph, the gradient one from torch."""
        return self.torch_model.supported_segmenters

    def save(self, path, *args, **kwargs) -> str:
        """Save the torch model (``InspectionModel.save``)."""
        return self.torch_model.save(path, *args, **kwargs)

    def with_calibration(self, calibration) -> "AcceleratedModel":
        """Both models deciding with ``calibration`` (the graph model in Python, on its float32 raw score)."""
        return AcceleratedModel(self.torch_model.with_calibration(calibration),
                                self.graph_model.with_calibration(calibration), self.choice)

    # ---- what the graph answers ----------------------------------------------------------
    def inspect(self, frames: Sequence[Frame], maps: str | None = None, threshold: Threshold | float | None = None,
                maps_on: str = "all") -> list[InspectionResult]:
        """Decide frames on the graph: one complete record per frame, as ``InspectionModel.inspect``.

        A map the graph does not draw (anything but ``"fast"``) goes to the torch model,
        which draws it or refuses it with its own message.
        """
        if maps not in (None, "fast"):
            return self.torch_model.inspect(frames, maps=maps, threshold=threshold, maps_on=maps_on)
        results = self.graph_model.inspect(frames, maps=maps, threshold=threshold, maps_on=maps_on)
        model_hash = self.torch_model.model_hash
        return [r if r.model_hash == model_hash else dataclasses.replace(r, model_hash=model_hash) for r in results]

    def score_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Raw scores from the graph (float64 ``(N,)``)."""
        return self.graph_model.score_images(images)

    def heatmaps(self, images: Sequence[np.ndarray], method: str = "fast", progress=None,
                 fast: Sequence[Heatmap] | None = None) -> list[Heatmap]:
        """The fast map from the graph; the gradient map (given the fast ones when known) from torch."""
        if method == "fast" and "fast" in self.graph_model.supported_segmenters:
            return self.graph_model.heatmaps(images, method)
        return self.torch_model.heatmaps(images, method=method, progress=progress, fast=fast)

    def __repr__(self) -> str:
        return f"AcceleratedModel({self.torch_model!r} on {self.runtime})"


# ---- choosing ------------------------------------------------------------------------------

def _engine_missing(runtime: str) -> str | None:
    """Why ``runtime`` cannot run here (its package, or the exporter's, missing), else ``None``."""
    module, extra = ("onnxruntime", "onnx") if runtime == "onnx" else ("openvino", "openvino")
    try:
        __import__(module)
    except ImportError:
        return f"{module} is not installed (pip install 'inspector[{extra}]')"
    try:
        import onnx  # noqa: F401  - the exporter writes the graph with it
    except ImportError:
        return "the onnx package (the exporter) is not installed (pip install 'inspector[onnx]')"
    return None


def _not_exportable(model) -> str | None:
    from inspector.export.onnx_export import check_exportable

    try:
        check_exportable(model)
    except ValueError as exc:
        return str(exc)
    device = getattr(model, "device", None)
    if device is not None and getattr(device, "type", "cpu") != "cpu":
        return f"the model runs on {device} (the exported graph runs on the CPU)"
    return None


def _open(runtime: str, path: Path, threads: int | None):
    if runtime == "openvino":
        from inspector.export.openvino_runtime import OpenVinoModel

        return OpenVinoModel(path, threads=threads)
    from inspector.export.onnx_runtime import OnnxModel

    return OnnxModel(path, ["CPUExecutionProvider"], threads=threads)


def _try(model, runtime: str, threads: int | None, fresh: str | None) -> tuple[object | None, RuntimeChoice]:
    """The graph model of one runtime and its choice, or ``None`` and the reason it cannot run.

    ``fresh``: export into a temporary folder (not the cache), and this is why (for the choice's reason).
    """
    name = RUNTIME_NAMES[runtime]
    temporary = tempfile.TemporaryDirectory(prefix="inspector-export-") if fresh else None
    try:
        try:
            path = cached_export(model, Path(temporary.name) if temporary else None)
        except Exception as exc:  # noqa: BLE001 - any export failure means: stay on torch, say why
            return None, RuntimeChoice("torch", f"the export failed ({type(exc).__name__}: {exc})")
        try:
            graph_model = _open(runtime, path, threads)
        except Exception as exc:  # noqa: BLE001 - an engine that cannot open the graph: stay on torch, say why
            return None, RuntimeChoice("torch", f"{name} cannot open the graph ({type(exc).__name__}: {exc})")
        probes = parity_frames(model)
        problem, worst = parity_problem(model, graph_model, probes)
        probes = len(probes)
        if problem:
            return None, RuntimeChoice("torch", f"{name} failed the parity check: {problem}", probes=probes,
                                       worst=worst)
        where = fresh or f"graph cached in {path}"
        return graph_model, RuntimeChoice(name, where, graph=None if fresh else str(path), probes=probes, worst=worst)
    finally:
        if temporary is not None:
            temporary.cleanup()  # the engines have read the graph into memory


def accelerate(model, runtime: str = "auto", threads: int | None = None, trust=None,
               order: Sequence[str] = AUTO_ORDER, cache: bool = True):
    """``(model, choice)``: ``model`` wrapped to decide on its exported graph when that is possible and
    passes parity, else ``model`` itself with the reason (see the module's docstring).

    Args:
        model: A loaded torch :class:`~inspector.pipeline.model.InspectionModel`.
        runtime: ``"auto"`` (the first of ``order`` that runs it, else torch), ``"torch"``
            (unchanged), ``"onnx"`` or ``"openvino"`` (that one, or :class:`AccelerationError`).
        threads: Intra-op threads of the engine (default: torch's thread count, which follows
            ``OMP_NUM_THREADS`` and the machine's cores, so both runtimes are given the same CPU).
        trust: The signature policy the model was loaded under; when active, the graph is
            exported anew for this load instead of read from the cache.
        order: The runtimes ``auto`` tries.
        cache: ``False`` exports into a temporary folder for this call only (benchmarks of
            models fitted for the run, which would only fill the cache).

    Raises:
        AccelerationError: an insisted runtime that cannot run the model (the message says why).
        ValueError: an unknown ``runtime``.
    """
    if runtime not in ("auto", "torch", "onnx", "openvino"):
        raise ValueError(f"unknown runtime {runtime!r}: auto, torch, onnx or openvino")
    if runtime == "torch":
        return model, RuntimeChoice("torch", "--runtime torch")
    wanted = tuple(order) if runtime == "auto" else (runtime,)
    problem = _not_exportable(model)
    if problem is None:
        missing = {r: _engine_missing(r) for r in wanted}
        if all(missing.values()):
            problem = "; ".join(missing.values())
    if problem is not None:
        if runtime != "auto":
            raise AccelerationError(f"--runtime {runtime}: {problem}")
        return model, RuntimeChoice("torch", problem)
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    signed = bool(trust is not None and getattr(trust, "active", False))
    fresh = None
    if signed:
        fresh = "exported for this load (signature policy active: the cache is not used)"
    elif not cache:
        fresh = "exported into a temporary folder for this run"
    reasons = []
    for candidate in wanted:
        if missing[candidate]:
            reasons.append(missing[candidate])
            continue
        graph_model, choice = _try(model, candidate, threads, fresh)
        if graph_model is not None:
            return AcceleratedModel(model, graph_model, choice), choice
        reasons.append(choice.reason)
    if runtime != "auto":
        raise AccelerationError(f"--runtime {runtime}: {'; '.join(reasons)}")
    return model, RuntimeChoice("torch", "; ".join(reasons))


def runtime_of(model) -> str:
    """The engine that decides for ``model``: ``"onnxruntime"``, ``"openvino"`` or ``"torch"``."""
    return str(getattr(model, "runtime", None) or "torch")
