"""Turns the station's changes into audit rows, written on the model worker (never on the GUI thread).

Watched: every model swap (``model_swap``: loaded, restored by undo), every new
calibration of the model in use (``calibration``), every refit (``refit``, with
what it was fitted on), and the operator's threshold (``threshold``, debounced:
the value the operator settled on, once the box stops moving). Only real changes
are rows: the operator's threshold restored from the settings at a start is the
value already recorded, not a change; an operator threshold that a swap (refit,
recalibration, another model) puts back to the calibrated one is a ``threshold``
row of its own, when the threshold in use changes with it. Feedback rows are
written by the model worker when it keeps the marked image
(:meth:`~inspector.workers.model_worker.ModelWorker.keep_feedback`).

Rows go to ``ResultStore.record_audit`` through the station's store holder. When
the database cannot be written the row is logged and dropped (the status bar
says so); decisions, not audit rows, are what the journal keeps.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from inspector.workers.model_worker import AUDIT_LIMIT

THRESHOLD_SETTLE_MS = 1500
"""A threshold is recorded once it has not changed for this long (the final value of a drag)."""


class AuditTrail(QObject):
    """Records the station's changes (see the module docstring).

    Args:
        station: The :class:`~inspector.workers.station.Station`.
        settle_ms: Debounce of threshold changes.

    Signals:
        rows_loaded(list): audit rows, newest first (answers :meth:`refresh`).
        recorded(int): a row was written (its id).
    """

    rows_loaded = Signal(list)
    recorded = Signal(int)
    _record = Signal(object, object)
    _load = Signal(object, int)

    def __init__(self, station, settle_ms: int = THRESHOLD_SETTLE_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.station = station
        self._model: Any = None
        self._path = ""
        self._fits: dict[int, tuple[Any, Any, dict]] = {}
        self._reason = ""
        self._recorded_threshold: float | None = None  # operator threshold last recorded (None: calibrated)
        self._latest_threshold: float | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(settle_ms)
        self._timer.timeout.connect(self.flush_threshold)
        self._record.connect(station.models.record_audit)
        self._load.connect(station.models.load_audit)
        station.models.audit_loaded.connect(self.rows_loaded)
        station.models.audit_failed.connect(station.message)
        station.models.audit_recorded.connect(self.recorded)
        station.fitter.model_fitted.connect(self._on_fitted)
        station.model_changed.connect(self._on_model_changed)
        station.threshold_changed.connect(self._on_threshold)

    # -- requests ----------------------------------------------------------------------------

    def record(self, action: str, **values) -> None:
        """Write one audit row on the model worker (``values``: as ``ResultStore.record_audit``)."""
        self._record.emit(self.station.store, dict(values, action=action))

    def refresh(self) -> None:
        """Ask the model worker for the newest rows; :attr:`rows_loaded` answers."""
        self._load.emit(self.station.store, AUDIT_LIMIT)

    def next_swap_reason(self, reason: str) -> None:
        """The reason the next model swap is recorded with (e.g. ``"undo"``)."""
        self._reason = reason

    def threshold_restored(self, raw: float | None) -> None:
        """The operator's threshold ``raw`` is restored as it was (from the settings): not a change to record."""
        self.flush_threshold()
        self._recorded_threshold = self._latest_threshold = None if raw is None else float(raw)

    # -- station answers -----------------------------------------------------------------------

    def _on_fitted(self, model: Any, request: Any, counts: dict) -> None:
        self._fits[id(model)] = (model, request, counts)

    def _on_model_changed(self, model: Any, path: str) -> None:
        self.flush_threshold()
        previous, previous_path = self._model, self._path
        override = self._recorded_threshold
        self._model, self._path = model, path
        self._recorded_threshold = self._latest_threshold = None  # a swap goes back to the calibrated threshold
        reason, self._reason = self._reason, ""
        kind = self._record_swap(previous, previous_path, model, path, reason)
        if override is not None and previous is not None and override != float(model.threshold):
            calibrated = float(model.threshold)
            self.record("threshold", old=_threshold_text(override, float(previous.threshold)),
                        new=_threshold_text(None, calibrated), old_model_hash=previous.model_hash,
                        new_model_hash=model.model_hash,
                        detail={"calibrated_raw": calibrated, "relative": None,
                                "reason": f"operator threshold reset by the {kind.replace('_', ' ')}"})

    def _record_swap(self, previous: Any, previous_path: str, model: Any, path: str, reason: str) -> str:
        """Write the row of a swap to ``model``; returns its action."""
        old_hash = previous.model_hash if previous is not None else None
        fitted = self._fits.pop(id(model), None)
        if fitted is not None:
            _, request, counts = fitted
            self.record("refit", old=_name(previous_path, previous), new=_name(path, model),
                        old_model_hash=old_hash, new_model_hash=model.model_hash,
                        detail=dict(counts, reason=getattr(request, "reason", "refit"),
                                    reference_dir=model.info.get("reference_dir"),
                                    threshold=model.threshold, saved=path or None))
            return "refit"
        if previous is not None and previous.detector is model.detector:
            self.record("calibration", old=f"{previous.threshold:.6g}", new=f"{model.threshold:.6g}",
                        old_model_hash=old_hash, new_model_hash=model.model_hash,
                        detail={"policy": model.calibration.policy, "reason": reason or "applied",
                                "expected_frr": model.calibration.expected_frr})
            return "calibration"
        self.record("model_swap", old=_name(previous_path, previous), new=_name(path, model),
                    old_model_hash=old_hash, new_model_hash=model.model_hash,
                    detail={"reason": reason or ("loaded" if path else "unsaved model"),
                            "detector": model.detector_kind, "path": path or None})
        return "model_swap"

    def _on_threshold(self, _threshold: float) -> None:
        self._latest_threshold = self.station.operator_threshold
        self._timer.start()

    def flush_threshold(self) -> None:
        """Record the operator's threshold now if it differs from the last recorded one."""
        self._timer.stop()
        new, old = self._latest_threshold, self._recorded_threshold
        model = self._model
        if new == old or model is None:
            return
        self._recorded_threshold = new
        calibrated = float(model.threshold)
        self.record("threshold", old=_threshold_text(old, calibrated), new=_threshold_text(new, calibrated),
                    old_model_hash=model.model_hash, new_model_hash=model.model_hash,
                    detail={"calibrated_raw": calibrated,
                            "relative": None if new is None else round(new / max(calibrated, 1e-12), 6)})


def _name(path: str, model: Any) -> str | None:
    if model is None:
        return None
    return os.path.basename(path) if path else f"unsaved {model.model_hash[:12]}"


def _threshold_text(raw: float | None, calibrated: float) -> str:
    """A threshold for the audit row: raw value, or ``calibrated`` for the model's own."""
    return f"calibrated ({calibrated:.6g})" if raw is None else f"{raw:.6g}"
