"""``export_onnx``: one fitted model as one ONNX graph, preprocessing and calibration inside.

The graph (:class:`inspector.export.graph.InspectionGraph`) takes ``images``, uint8
``(N, S, S, 3)`` RGB at the model's square input size ``S`` with a dynamic batch axis,
and returns ``raw_score``, ``score`` (raw / threshold), ``anomalous`` and, for models
with a fast map, ``anomaly_map`` normalized like the station's fast map (1.0 = the
pixel threshold). Frames are resized to ``S x S`` outside the graph, by the rule the
torch path uses (:func:`inspector.export.onnx_runtime.resize_for_model`): ONNX has no
area resampling, and cv2's INTER_AREA is what the model was calibrated with.

The file's ``metadata_props`` carry what a program needs to trust and read the
outputs (:mod:`inspector.export.metadata`): format version, threshold, calibration
summary, backbone and weights hash, model hash, input size, detector, descriptions.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import torch

import inspector
from inspector.export.graph import EXPORTABLE_DETECTORS, InspectionGraph
from inspector.export.metadata import (FORMAT, FORMAT_VERSION, INPUT_DESCRIPTION, INPUT_NAME, OUTPUT_DESCRIPTIONS,
                                       OUTPUT_NAMES, encode)

MIN_OPSET = 17
DEFAULT_OPSET = 17


def check_exportable(model) -> None:
    """Raise ``ValueError`` naming the exportable detectors when ``model``'s detector is not one of them."""
    if model.detector_kind not in EXPORTABLE_DETECTORS:
        raise ValueError(f"the {model.detector_kind} detector cannot be exported to ONNX; exportable detectors: "
                         f"{', '.join(EXPORTABLE_DETECTORS)} (refit with --detector fusion)")
    if getattr(model, "regions", None) is not None:
        raise ValueError("this model has inspection/ignore regions (fit --mask), which the ONNX export does not "
                         "carry yet; export a model fitted without --mask")


def export_metadata(model, graph: InspectionGraph, opset: int) -> dict:
    """The metadata of the exported file, before encoding (see :mod:`inspector.export.metadata`)."""
    cal = model.calibration
    frr = cal.frr
    escape = cal.escape
    outputs = [name for name in OUTPUT_NAMES if name != "anomaly_map" or graph.has_map]
    pixel = model.pixel_calibration.get("fast")
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "detector": model.detector_kind,
        "backbone": model.backbone,
        "backbone_weights_sha256": model.detector.backbone_sha256,
        "model_hash": model.model_hash,
        "input_size": graph.size,
        "input": INPUT_DESCRIPTION,
        "threshold": float(model.threshold),
        "calibration": {
            "policy": cal.policy, "target": cal.target, "threshold": float(cal.threshold),
            "expected_frr": float(cal.expected_frr), "expected_frr_interval": [frr.low, frr.high],
            "n_held_out": len(cal.good_scores),
            "expected_escape": cal.expected_escape,
            "expected_escape_interval": None if escape is None else [escape.low, escape.high],
            "n_bad": len(cal.bad_scores), "warning": cal.warning,
            # The evidence itself, so that a runtime can rebuild the Calibration (calibration view, re-deciding).
            "good_scores": list(cal.good_scores), "bad_scores": list(cal.bad_scores),
        },
        "preprocessing": model.detector.preprocessing.to_dict(),
        "pixel_calibration": None if pixel is None or not graph.has_map else pixel.to_dict(),
        "outputs": {name: OUTPUT_DESCRIPTIONS[name] for name in outputs},
        "fusion": ({"components": list(graph.components), "norms": graph.norms}
                   if model.detector_kind == "fusion" else None),
        "opset": opset,
        "software_version": inspector.__version__,
        "torch_version": torch.__version__,
    }


def _static_map_shape(proto, size: int) -> None:
    """Declare ``anomaly_map``'s spatial axes as ``size`` (the tracer names them symbolically)."""
    for output in proto.graph.output:
        if output.name == "anomaly_map":
            dims = output.type.tensor_type.shape.dim
            for dim in dims[1:]:
                dim.Clear()
                dim.dim_value = size


def export_onnx(model, path: str | os.PathLike, opset: int = DEFAULT_OPSET) -> dict:
    """Write ``model`` as one ONNX graph with its metadata; returns the metadata written (decoded).

    Args:
        model: A fitted :class:`~inspector.pipeline.model.InspectionModel` (``fusion`` or ``gaussian``).
        path: The ``.onnx`` file to write (replaced atomically).
        opset: ONNX opset, 17 or newer.

    Raises:
        ValueError: for another detector or an opset below 17.
        ImportError: when the ``onnx`` package is not installed (``pip install 'inspector[onnx]'``).
    """
    check_exportable(model)
    if int(opset) < MIN_OPSET:
        raise ValueError(f"--opset must be {MIN_OPSET} or newer, got {opset}")
    import onnx

    graph = InspectionGraph(model).eval()
    size = graph.size
    example = torch.zeros(2, size, size, 3, dtype=torch.uint8)
    outputs = [name for name in OUTPUT_NAMES if name != "anomaly_map" or graph.has_map]
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The legacy exporter's deprecation notice, and tracer warnings about the fixed input size.
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (example,), buffer, dynamo=False, opset_version=int(opset),
                          input_names=[INPUT_NAME], output_names=outputs, do_constant_folding=True,
                          dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *outputs)})
    proto = onnx.load_model_from_string(buffer.getvalue())
    _static_map_shape(proto, size)
    meta = export_metadata(model, graph, int(opset))
    del proto.metadata_props[:]
    for key, value in encode(meta).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name, proto.producer_version = "inspector", inspector.__version__
    proto.doc_string = f"Inspector {model.detector_kind} model {model.model_hash[:12]}: {INPUT_DESCRIPTION}"
    onnx.checker.check_model(proto)
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(proto.SerializeToString())
    os.replace(partial, target)
    return {k: v for k, v in meta.items() if v is not None}
