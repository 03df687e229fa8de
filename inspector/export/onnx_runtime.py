"""Running an exported model with onnxruntime, behind the facade's ``inspect`` (no torch needed).

:class:`OnnxModel` loads a file written by :func:`inspector.export.onnx_export.export_onnx`
and returns the same :class:`~inspector.core.records.InspectionResult` records as
:meth:`inspector.pipeline.model.InspectionModel.inspect`: raw and normalized score,
verdict, threshold, the model hash of the model it was exported from and, with
``maps="fast"``, the fast map stretched back to the frame's geometry with its regions.
"""

from __future__ import annotations

import copy
import os
import time
from typing import Sequence

import cv2
import numpy as np

from inspector.core.policy import Threshold
from inspector.core.records import Frame, Heatmap, InspectionResult
from inspector.export.metadata import INPUT_NAME, decode
from inspector.segmentation.geometry import to_frame_geometry
from inspector.segmentation.regions import find_regions

MAP_CHOICES = (None, "fast")
MAPS_ON = ("all", "ng")
BATCH = 16
"""Frames per onnxruntime call in :meth:`OnnxModel.inspect` (bounds the memory of long lists)."""


def resize_for_model(image: np.ndarray, size: int) -> np.ndarray:
    """An RGB uint8 frame stretched to ``size x size`` as the model's input expects.

    The rule of :meth:`inspector.backbones.preprocessing.Preprocessing.resize_image`:
    unchanged at the right size, ``cv2.INTER_AREA`` when either side shrinks, else
    ``cv2.INTER_LINEAR``.
    """
    if image.shape[0] == size and image.shape[1] == size:
        return image
    shrinking = image.shape[0] > size or image.shape[1] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _heatmap(square: np.ndarray, frame_shape: tuple[int, ...], method: str) -> Heatmap:
    """A map at the input size stretched to the frame (as the torch path draws it), with its regions."""
    values = to_frame_geometry(square, frame_shape)
    return Heatmap(values=values, method=method, regions=find_regions(values))


def onnx_metadata(path: str | os.PathLike) -> dict:
    """The metadata of an exported file, JSON values parsed (see :mod:`inspector.export.metadata`).

    Raises:
        ValueError: for a file that is not an Inspector export, or of a newer format.
        OSError: for a file that cannot be read.
    """
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        proto = onnx.load(os.fspath(path), load_external_data=False)
        props = {entry.key: entry.value for entry in proto.metadata_props}
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
        props = dict(session.get_modelmeta().custom_metadata_map)
    return decode(props)


ONNX_SUFFIX = ".onnx"
"""The file suffix that selects the onnxruntime path (:func:`is_onnx_path`)."""


def is_onnx_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an exported model (by its suffix, case-insensitive)."""
    return os.fspath(path).lower().endswith(ONNX_SUFFIX)


class ExportedDetector:
    """The stable identity of an exported model's detector (what ``model.detector`` is for the station).

    The window and the audit trail compare ``previous.detector is model.detector`` to tell
    a new model from a recalibration of the same one; :meth:`OnnxModel.with_calibration`
    keeps this object, a new load makes a new one. It carries no weights (they are in the
    graph) and cannot be refitted.

    Attributes:
        kind: The detector's registered name.
        model_hash: Hash of the model file the export was made from.
    """

    def __init__(self, kind: str, model_hash: str) -> None:
        self.kind = kind
        self.model_hash = model_hash

    def __repr__(self) -> str:
        return f"ExportedDetector({self.kind}, hash={self.model_hash[:12]})"


def load_onnx_model(path: str | os.PathLike, trust=None, providers: Sequence[str] | None = None,
                    threads: int | None = None, runtime: str = "onnx") -> "OnnxModel":
    """Open an exported model for the command line and the station, checking its signature first.

    Args:
        path: The ``.onnx`` file.
        trust: A :class:`inspector.storage.signing.TrustPolicy`; ``None`` reads the settings'
            and environment's policy (as :meth:`InspectionModel.load`). An active policy checks
            the ``.sig`` sidecar over the file's exact bytes, as for ``.safetensors`` models.
        providers, threads: As :class:`OnnxModel`.
        runtime: ``"onnx"`` (onnxruntime) or ``"openvino"`` (OpenVINO's CPU plugin,
            :class:`inspector.export.openvino_runtime.OpenVinoModel`; ``providers`` unused).

    Raises:
        ModelFileError: a missing file, or a signature the policy refuses.
        ValueError: a file that is not an Inspector export.
    """
    from inspector.storage.model_file import ModelFileError

    if trust is None:
        from inspector.storage.signing import default_trust_policy

        trust = default_trust_policy()
    try:
        data = open(os.fspath(path), "rb").read() if trust.active else None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read the exported model ({exc.strerror or exc})") from exc
    if data is not None:
        trust.check(path, data)
    if not os.path.isfile(os.fspath(path)):
        raise ModelFileError(f"{path}: no such exported model file")
    try:
        if runtime == "openvino":
            from inspector.export.openvino_runtime import OpenVinoModel

            return OpenVinoModel(path, threads=threads)
        return OnnxModel(path, providers=providers, threads=threads)
    except ImportError as exc:
        extra = "openvino" if runtime == "openvino" else "onnx"
        engine = "OpenVINO" if runtime == "openvino" else "onnxruntime"
        raise ModelFileError(f"{path}: running an exported model with {engine} needs the {extra} extra "
                             f"(pip install 'inspector[{extra}]')") from exc
    except (ValueError, KeyError) as exc:
        raise ModelFileError(f"{path}: not an Inspector ONNX export ({exc})") from exc
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
        if type(exc).__module__.startswith(("onnxruntime", "onnx", "google.protobuf", "openvino")):
            raise ModelFileError(f"{path}: cannot open the ONNX graph ({exc})") from exc
        raise


def default_providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, then the CPU."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class OnnxModel:
    """An exported model in an onnxruntime session, deciding frames like ``InspectionModel.inspect``.

    Args:
        path: The ``.onnx`` file.
        providers: onnxruntime execution providers (default :func:`default_providers`).
        threads: Intra-op threads (default: onnxruntime's choice, one per physical core).
        optimization: ``"all"`` (``ORT_ENABLE_ALL``), ``"extended"``, ``"basic"`` or ``"none"``.
        spinning: Let idle intra-op threads spin-wait for the next run (onnxruntime's default).
            Off by default: README "Station responsiveness" measured the station faster without it,
            as its decoding and window share the cores with inspection.

    Raises:
        ValueError: for a file that is not an Inspector export.
    """

    def __init__(self, path: str | os.PathLike, providers: Sequence[str] | None = None, threads: int | None = None,
                 optimization: str = "all", spinning: bool = False) -> None:
        import onnxruntime

        self.path = os.fspath(path)
        self.metadata = onnx_metadata(path)
        levels = {"all": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
                  "extended": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  "basic": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "none": onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL}
        if optimization not in levels:
            raise ValueError(f"optimization must be one of {', '.join(levels)}, got {optimization!r}")
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = levels[optimization]
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        # Spin-waiting keeps a pool thread on a core between runs (a whole core in the station),
        # starving the threads beside inspection: decoding, the window, the gradient maps.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        self.session = onnxruntime.InferenceSession(self.path, options,
                                                    providers=list(providers or default_providers()))
        self._setup(tuple(output.name for output in self.session.get_outputs()))

    runtime = "onnxruntime"
    """The engine that runs the graph (what the station logs and ``info`` shows)."""

    def _setup(self, outputs: tuple[str, ...]) -> None:
        """What every engine's model shares once its graph is open: outputs, threshold, identity."""
        self.outputs = outputs
        self._graph_threshold = float(self.metadata["threshold"])
        self.decision = Threshold(self._graph_threshold)
        self._calibration = None
        self.detector = ExportedDetector(self.detector_kind, self.model_hash)
        self.regions = None
        """No inspected-region mask in an export (the graph scores the whole frame)."""
        self.info = {"exported_from": self.model_hash, "software_version": self.metadata.get("software_version"),
                     "onnx_path": self.path}

    @property
    def calibration(self):
        """The :class:`~inspector.calibration.policies.Calibration` the model decides with (from the metadata)."""
        from inspector.calibration.policies import Calibration

        if self._calibration is None:
            self._calibration = Calibration.from_dict(dict(self.metadata["calibration"]))
        return self._calibration

    def with_calibration(self, calibration) -> "OnnxModel":
        """A model sharing this session, deciding with ``calibration``'s threshold (in Python, not the graph)."""
        twin = copy.copy(self)
        twin.decision, twin._calibration = Threshold(calibration.threshold), calibration
        return twin

    # ---- identity (as InspectionModel) ------------------------------------------------------
    @property
    def model_hash(self) -> str:
        """Hash of the model file the export was made from (the records carry it)."""
        return str(self.metadata["model_hash"])

    @property
    def detector_kind(self) -> str:
        """The detector's registered name."""
        return str(self.metadata["detector"])

    @property
    def backbone(self) -> str | None:
        """The backbone's name."""
        return self.metadata.get("backbone")

    @property
    def threshold(self) -> float:
        """The calibrated raw threshold."""
        return self.decision.raw

    @property
    def input_size(self) -> int:
        """The square input size ``S`` of the graph."""
        return int(self.metadata["input_size"])

    @property
    def supported_segmenters(self) -> tuple[str, ...]:
        """``("fast",)`` when the graph has the map output, else ``()``."""
        return ("fast",) if "anomaly_map" in self.outputs else ()

    def save(self, path) -> str:
        """Exported models are not saved by Inspector (re-export from the ``.safetensors`` model).

        Raises:
            ValueError: always.
        """
        raise ValueError("an exported ONNX model cannot be saved from Inspector; save the .safetensors "
                         "model and run `inspector export` again")

    @property
    def providers(self) -> list[str]:
        """The execution providers the session uses."""
        return self.session.get_providers()

    # ---- running --------------------------------------------------------------------------
    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's outputs for a uint8 ``(N, S, S, 3)`` batch already at the input size, by name."""
        values = self.session.run(None, {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.uint8)})
        return dict(zip(self.outputs, values))

    def _batches(self, images: Sequence[np.ndarray]):
        size = self.input_size
        for start in range(0, len(images), BATCH):
            yield self.run(np.stack([resize_for_model(image, size) for image in images[start:start + BATCH]]))

    def score_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Raw scores of RGB uint8 frames of any size, float64 ``(N,)``."""
        if not len(images):
            return np.zeros(0)
        return np.concatenate([out["raw_score"] for out in self._batches(images)]).astype(np.float64)

    def inspect(self, frames: Sequence[Frame], maps: str | None = None, threshold: Threshold | float | None = None,
                maps_on: str = "all") -> list[InspectionResult]:
        """Decide frames: one complete record per frame, as :meth:`InspectionModel.inspect`.

        With the threshold baked into the graph the verdict is the graph's ``anomalous``
        (decided in float64); with another one (``threshold``, :meth:`with_calibration`),
        :class:`Threshold` decides on the float32 raw score.

        Raises:
            ValueError: for a map this model cannot draw or an unknown ``maps_on``.
        """
        if maps not in MAP_CHOICES or maps_on not in MAPS_ON:
            raise ValueError(f"maps must be one of {MAP_CHOICES} and maps_on one of {MAPS_ON}")
        if maps is not None and maps not in self.supported_segmenters:
            raise ValueError(f"this exported {self.detector_kind} model has no {maps!r} map; "
                             f"available: {', '.join(self.supported_segmenters) or 'none'}")
        if not frames:
            return []
        rule = self.decision if threshold is None else Threshold.of(threshold)
        started = time.perf_counter()
        outs = list(self._batches([frame.image for frame in frames]))
        raw = np.concatenate([out["raw_score"] for out in outs]).astype(np.float64)
        flagged = (np.concatenate([out["anomalous"] for out in outs]) if rule.raw == self._graph_threshold
                   else rule.decide_many(raw))
        heatmaps: list[Heatmap | None] = [None] * len(frames)
        if maps is not None:
            values = np.concatenate([out["anomaly_map"] for out in outs])
            for index in np.flatnonzero(flagged) if maps_on == "ng" else range(len(frames)):
                heatmaps[index] = _heatmap(values[index], frames[index].image.shape[:2], maps)
        latency = (time.perf_counter() - started) * 1000.0 / len(frames)
        return [InspectionResult(frame=frame, raw_score=float(score), score=rule.normalize(score),
                                 threshold=rule.raw, anomalous=bool(ng), model_hash=self.model_hash,
                                 latency_ms=latency, heatmap=heatmap)
                for frame, score, ng, heatmap in zip(frames, raw, flagged, heatmaps)]

    def heatmaps(self, images: Sequence[np.ndarray], method: str = "fast", progress=None,
                 fast: Sequence[Heatmap] | None = None) -> list[Heatmap]:
        """Fast maps in each image's own geometry, normalized with the stored pixel statistics.

        Raises:
            ValueError: for a method other than ``"fast"`` or a model without the map.
        """
        if method not in self.supported_segmenters:
            raise ValueError(f"this exported {self.detector_kind} model has no {method!r} map; "
                             f"available: {', '.join(self.supported_segmenters) or 'none'}")
        values = [out["anomaly_map"] for out in self._batches(list(images))]
        values = np.concatenate(values) if values else np.zeros((0, self.input_size, self.input_size), np.float32)
        return [_heatmap(v, image.shape[:2], method) for v, image in zip(values, images)]

    def __repr__(self) -> str:
        return (f"OnnxModel({self.detector_kind}, backbone={self.backbone}, threshold={self.threshold:.4g}, "
                f"hash={self.model_hash[:12]}, providers={self.providers})")
