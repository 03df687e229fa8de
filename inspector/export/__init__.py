"""Deployable models: one ONNX graph per model, and an onnxruntime model with the facade's ``inspect``.

- :mod:`inspector.export.onnx_export` (torch): ``export_onnx(model, path)``;
- :mod:`inspector.export.onnx_runtime` (no torch): ``OnnxModel``, ``onnx_metadata``, ``resize_for_model``;
- :mod:`inspector.export.metadata` (no torch): input/output names and the metadata keys of the file.

Nothing here imports Qt.
"""
