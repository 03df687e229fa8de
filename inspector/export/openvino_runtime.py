"""Running an exported model with OpenVINO's CPU plugin, behind the same facade as :class:`OnnxModel`.

:class:`OpenVinoModel` compiles the very ``.onnx`` file :func:`inspector.export.onnx_export.export_onnx`
writes (OpenVINO reads ONNX directly; no conversion step, no second file) and returns the
records of :meth:`inspector.export.onnx_runtime.OnnxModel.inspect`: only the engine under
:meth:`run` differs. Two settings matter for parity with torch:

- ``INFERENCE_PRECISION_HINT = f32``: on CPUs with bf16 or AMX units the plugin would
  otherwise compute in bf16, far outside the 1e-4 the parity tests ask for;
- the graph's float64 parts (Mahalanobis distances, the fusion, the threshold) run in
  float32 in this plugin (it has no float64 kernels), which the parity tests measure
  (raw scores within about 1e-6 relative on real ELPV cells).

Needs the ``openvino`` extra (``pip install 'inspector[openvino]'``). No torch.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from inspector.export.metadata import INPUT_NAME, OUTPUT_NAMES
from inspector.export.onnx_runtime import OnnxModel, onnx_metadata

DEVICE = "CPU"


def openvino_available() -> bool:
    """Whether the ``openvino`` package imports here."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


class OpenVinoModel(OnnxModel):
    """An exported model compiled by OpenVINO for the CPU, deciding frames like ``InspectionModel.inspect``.

    Args:
        path: The ``.onnx`` file.
        threads: ``INFERENCE_NUM_THREADS`` (default: OpenVINO's choice, one per physical core).
        hint: OpenVINO's ``PERFORMANCE_HINT``: ``"LATENCY"`` (one stream: the station's one
            frame at a time) or ``"THROUGHPUT"``.

    Raises:
        ImportError: when openvino is not installed.
        ValueError: for a file that is not an Inspector export.
    """

    runtime = "openvino"

    def __init__(self, path: str | os.PathLike, threads: int | None = None, hint: str = "LATENCY") -> None:
        import openvino

        self.path = os.fspath(path)
        self.metadata = onnx_metadata(path)
        config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": str(hint)}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = openvino.Core().compile_model(self.path, DEVICE, config)
        ports, names = [], []
        for port in self.compiled.outputs:
            # OpenVINO keeps the ONNX output name among a port's tensor names (beside internal ones).
            name = next((n for n in OUTPUT_NAMES if n in port.get_names()), None)
            if name is None:
                raise ValueError(f"unexpected output {port.get_any_name()!r} in {self.path}")
            ports.append(port)
            names.append(name)
        self._ports = tuple(ports)
        self._idle: list = []  # infer requests not in use (see run)
        self._pool_lock = threading.Lock()
        self._setup(tuple(names))

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's outputs for a uint8 ``(N, S, S, 3)`` batch already at the input size, by name.

        One infer request is not safe to share between threads, so each call takes an idle
        request from the model's pool (or makes one) and puts it back. The requests belong to
        the model, not to a thread: kept in a ``threading.local``, a request was destroyed
        with the temporary Python thread state PySide makes for a slot on a Qt thread, and
        that crashed the process (`inspector serve --runtime openvino`).
        """
        with self._pool_lock:
            request = self._idle.pop() if self._idle else self.compiled.create_infer_request()
        try:
            request.infer({INPUT_NAME: np.ascontiguousarray(batch, dtype=np.uint8)})
            return {name: np.array(request.get_tensor(port).data, copy=True)
                    for name, port in zip(self.outputs, self._ports)}
        finally:
            with self._pool_lock:
                self._idle.append(request)

    @property
    def providers(self) -> list[str]:
        """The engine and device, in the shape of onnxruntime's provider list."""
        return [f"OpenVINO:{DEVICE}"]

    def __repr__(self) -> str:
        return (f"OpenVinoModel({self.detector_kind}, backbone={self.backbone}, threshold={self.threshold:.4g}, "
                f"hash={self.model_hash[:12]})")
