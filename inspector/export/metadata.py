"""What an exported ONNX file promises: its input, its outputs and the metadata it carries.

Torch-free, so that :mod:`inspector.export.onnx_runtime` and programs that only read
metadata need neither torch nor the exporter. Every metadata value is a string in the
ONNX ``metadata_props`` (readable from C++/C# through onnxruntime's
``ModelMetadata::GetCustomMetadataMap``); structured values are JSON.
"""

from __future__ import annotations

import json

FORMAT = "inspector-onnx"
FORMAT_VERSION = 1
"""Version of the contract below (names, dtypes, meanings); bumped when any of it changes."""

INPUT_NAME = "images"
OUTPUT_NAMES = ("raw_score", "score", "anomalous", "anomaly_map")

INPUT_DESCRIPTION = (
    "uint8 (N, S, S, 3) RGB, S = input_size; N is dynamic. Resize frames to SxS outside the graph "
    "(the whole frame stretched, no crop): cv2.INTER_AREA when shrinking, cv2.INTER_LINEAR when "
    "enlarging (inspector.export.onnx_runtime.resize_for_model). Scaling to [0, 1] and the "
    "per-channel mean/std are inside the graph."
)
OUTPUT_DESCRIPTIONS = {
    "raw_score": "float32 (N,): the detector's raw score, higher = more anomalous",
    "score": "float32 (N,): raw_score / threshold; NG above 1.0",
    "anomalous": "bool (N,): raw_score > threshold, decided in float64 inside the graph (NG = true)",
    "anomaly_map": ("float32 (N, S, S): the fast map at the input size, normalized with the stored pixel "
                    "statistics, (raw - floor) / (pixel_threshold - floor) clipped at 0: 1.0 = the "
                    "calibrated pixel threshold; stretch it back to the frame's size (bilinear). "
                    "Absent for models without a fast map"),
}

# Metadata keys whose values are JSON (the others are plain strings).
JSON_KEYS = ("format_version", "threshold", "input_size", "calibration", "preprocessing",
             "pixel_calibration", "outputs", "fusion")


def encode(values: dict) -> dict[str, str]:
    """Metadata values as the strings ONNX stores: JSON for :data:`JSON_KEYS`, ``str`` for the rest."""
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = json.dumps(value, sort_keys=True) if key in JSON_KEYS else str(value)
    return out


def decode(props: dict[str, str]) -> dict:
    """Inverse of :func:`encode`: JSON keys parsed, other strings kept.

    Raises:
        ValueError: when the properties are not those of an Inspector export, or of a newer format.
    """
    if props.get("format") != FORMAT:
        raise ValueError("not an Inspector ONNX export (no 'format: inspector-onnx' in its metadata)")
    out: dict = {}
    for key, value in props.items():
        out[key] = json.loads(value) if key in JSON_KEYS else value
    version = int(out.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise ValueError(f"ONNX export format {version} is newer than this version reads ({FORMAT_VERSION}); "
                         "update Inspector")
    return out
