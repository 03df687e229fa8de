"""A fit's feature extraction on onnxruntime: the backbone pass traced once per fit, checked against torch.

A fit runs the backbone once over every reference image; on a CPU that pass is
most of a large fit, and onnxruntime runs the same network in well under half of
torch's time (README "Fit time"). :func:`onnx_forward` traces the detector's forward
into an ONNX graph in memory (no file is written or read back, so nothing cached on
disk is trusted), opens it on onnxruntime and checks its outputs against torch's on
the fit's first :data:`PROBE_IMAGES` images; the fit then extracts every batch on it.

Torch stays when the detector is not on the CPU, onnxruntime or onnx is missing,
there are fewer than :data:`MIN_IMAGES` images (tracing costs about 2 s), the
environment says ``INSPECTOR_FIT_ENGINE=torch``, the trace fails, or the outputs
differ from torch's by more than :data:`PARITY_RTOL`. The reason is returned.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from typing import Callable, Sequence

import torch

logger = logging.getLogger(__name__)

ENVIRONMENT = "INSPECTOR_FIT_ENGINE"
"""``torch`` keeps every fit's extraction on torch; anything else (or unset): onnxruntime when it can."""
MIN_IMAGES = 200
"""Fewer images than this are extracted on torch: the trace would cost more than onnxruntime saves."""
PROBE_IMAGES = 2
"""Images torch runs for the check: the trace's example is one image, and a graph that had fixed
the batch at one or mixed the images of a batch fails the check on two."""
PARITY_RTOL = 1e-4
"""Largest difference from torch accepted, relative to the largest absolute value of each output."""

Forward = Callable[[torch.Tensor], "tuple[list[torch.Tensor], list[torch.Tensor]]"]


class OnnxForward:
    """The traced forward on onnxruntime: ``(N, 3, S, S)`` batch -> ``(pooled, spatial)`` like torch's."""

    engine = "onnxruntime"

    def __init__(self, session, pooled_count: int) -> None:
        self.session = session
        self.pooled_count = int(pooled_count)
        self.input_name = session.get_inputs()[0].name

    def __call__(self, batch: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        outputs = [torch.from_numpy(value) for value in
                   self.session.run(None, {self.input_name: batch.detach().cpu().contiguous().numpy()})]
        return outputs[:self.pooled_count], outputs[self.pooled_count:]


class _Traced(torch.nn.Module):
    """The forward as a module for the tracer; pooled and spatial outputs in one flat tuple."""

    def __init__(self, forward: Forward) -> None:
        super().__init__()
        self._call = forward

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pooled, spatial = self._call(batch)
        return (*pooled, *spatial)


def onnx_forward(forward: Forward, batch: torch.Tensor,
                 expected: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]] | None,
                 image_count: int, device: torch.device) -> tuple[OnnxForward | None, str]:
    """The forward on onnxruntime when it can run and matches torch on ``batch``, else ``None``; and why.

    Args:
        forward: The detector's forward (``batch -> (pooled, spatial)``), on torch.
        batch: A few preprocessed images (:data:`PROBE_IMAGES`): the first is the trace's example,
            all of them the check's input.
        expected: Torch's outputs on ``batch``; ``None``: computed here, once the fit is known to be
            large enough and onnxruntime present (a small fit spends nothing on the probe).
        image_count: Images the fit extracts in all.
        device: The detector's device.
    """
    if os.environ.get(ENVIRONMENT, "").strip().lower() == "torch":
        return None, f"{ENVIRONMENT}=torch"
    if device.type != "cpu":
        return None, f"the backbone runs on {device}"
    if image_count < MIN_IMAGES:
        return None, f"{image_count} images (onnxruntime from {MIN_IMAGES})"
    try:
        import onnxruntime
        import onnx  # noqa: F401  - the tracer writes the graph with it
    except ImportError:
        return None, "onnxruntime or onnx is not installed (pip install 'inspector[onnx]')"
    if expected is None:
        with torch.inference_mode():
            expected = forward(batch)
    pooled, spatial = expected
    names = [f"pooled{i}" for i in range(len(pooled))] + [f"spatial{i}" for i in range(len(spatial))]
    buffer = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice, tracer notes
            # The tracer runs the network once on its example: one image traces the same graph (the
            # batch axis is dynamic) in a third of the time of a batch of 16.
            torch.onnx.export(_Traced(forward), (batch[:1],), buffer, dynamo=False, opset_version=17,
                              input_names=["images"], output_names=names, do_constant_folding=True,
                              dynamic_axes={name: {0: "batch"} for name in ("images", *names)})
        options = onnxruntime.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        engine = OnnxForward(onnxruntime.InferenceSession(buffer.getvalue(), options,
                                                          providers=["CPUExecutionProvider"]), len(pooled))
        got_pooled, got_spatial = engine(batch)
    except Exception as exc:  # noqa: BLE001 - any tracer or runtime failure: the fit goes on on torch
        logger.info("feature extraction stays on torch: tracing failed (%s)", exc)
        return None, f"tracing failed ({type(exc).__name__})"
    worst = max(float((got.double() - want.double()).abs().max() / want.double().abs().max().clamp_min(1e-12))
                for got, want in zip([*got_pooled, *got_spatial], [*pooled, *spatial]))
    if worst > PARITY_RTOL:
        return None, f"onnxruntime differs from torch by {worst:.1e} (relative)"
    return engine, f"onnxruntime (within {worst:.1e} of torch)"
