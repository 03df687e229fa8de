"""The pipeline: the model facade between the detectors and the workers.

:class:`inspector.pipeline.model.InspectionModel` fits, loads and saves a model
and turns frames into one immutable :class:`~inspector.core.records.InspectionResult`
each, score, verdict and fast map from one forward pass. Importing this package
does not import torch; the modules that need it import it themselves.
"""
