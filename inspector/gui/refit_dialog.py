"""The refit dialog: reference folder, optional bad folder, backbone and detector; progress and cancel.

The fit runs on the station's fit worker. When it ends the station swaps the
new model in between frames and keeps the previous one for undo (Ctrl+Z).
"""

from __future__ import annotations

import datetime as dt
import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from inspector.catalog import BACKBONES, DEFAULT_DETECTOR
from inspector.detectors.base import LEAVE_ONE_OUT_UP_TO, DetectorEntry, detector_catalog
from inspector.core.paths import models_dir
from inspector.gui.path_field import PathField
from inspector.gui.theme import MUTED, NG_COLOR, OK_COLOR
from inspector.pipeline.feedback import mask_picture, refit_settings
from inspector.workers.fit_worker import FitRequest

AUTO_FOLDS = 1
"""The folds box's special value: the fit's own rule (leave-one-out up to 40 references, else 10)."""
AUTO_FOLDS_TIP = ("auto: the fit's own rule, as the command line's default: leave-one-out up to "
                  f"{LEAVE_ONE_OUT_UP_TO} references, else 10 folds (trained detectors: 5)")


def default_model_path() -> str:
    """A fresh model file name in the user data folder (``$INSPECTOR_DATA_DIR`` when set)."""
    return str(models_dir() / f"refit-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.safetensors")


def _model_settings(model):
    """How the model in use was fitted (``None``: no model, or one that cannot say, e.g. an ONNX export)."""
    if model is None:
        return None
    try:
        return refit_settings(model)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def model_folds(model, settings) -> int | None:
    """The calibration folds to refit ``model`` with: the number its fit asked for, ``None`` for the fit's rule.

    A model fitted with the default rule (its ``fit_request`` holds no folds) is refitted by
    the same rule; an older file without a ``fit_request`` gives the folds its info records.
    """
    if settings is not None and settings.folds:
        return int(settings.folds)
    info = getattr(model, "info", None) or {}
    if isinstance(info.get("fit_request"), dict):
        return None
    folds = info.get("folds")
    return int(folds) if isinstance(folds, (int, float)) and folds >= 2 else None


def available_detectors() -> tuple[DetectorEntry, ...]:
    """The detectors the refit dialog offers: every registered one."""
    return detector_catalog()


class RefitDialog(QDialog):
    """Collects a :class:`FitRequest`, runs it on ``station`` and shows its progress.

    Args:
        station: The :class:`~inspector.workers.station.Station`.
        reference_dir: Initial reference folder.
        parent: Qt parent.
    """

    def __init__(self, station, reference_dir: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Refit from reference images")
        self.setMinimumWidth(560)
        self.station = station
        self.running = False
        self.reference = PathField("folder", "folder of good parts")
        self.reference.set_path(reference_dir)
        self.bad = PathField("folder", "optional: folder of known-bad parts (enables best-F1)")
        self.backbone = QComboBox()
        self.backbone.addItems(BACKBONES)
        self.weights = PathField("open", "weights file (B0-B7 only)", "Weights (*.pth *.pt *.safetensors)")
        self.detector = QComboBox()
        self._detectors = {entry.kind: entry for entry in available_detectors()}
        for index, entry in enumerate(self._detectors.values()):
            self.detector.addItem(entry.kind)
            self.detector.setItemData(index, f"{entry.title}: {entry.description}", Qt.ItemDataRole.ToolTipRole)
        self.detector.setCurrentText(DEFAULT_DETECTOR)
        self.folds = QSpinBox()
        self.folds.setRange(AUTO_FOLDS, LEAVE_ONE_OUT_UP_TO)
        self.folds.setToolTip(AUTO_FOLDS_TIP)
        self.save_to = PathField("save", "", "Models (*.safetensors)")
        self.save_to.set_path(default_model_path())
        model = self.model_in_use = station.model  # what the form is prefilled from
        if not reference_dir and model is not None and model.info.get("reference_dir"):
            self.reference.set_path(str(model.info["reference_dir"]))
        self.keep_regions = QCheckBox("Keep the inspection and ignore regions of the model in use")
        has_regions = model is not None and getattr(model, "regions", None) is not None
        self.keep_regions.setChecked(has_regions)
        self.keep_regions.setVisible(has_regions)
        # The model in use's own fit (detector options, input size, folds, policy): preselected and kept
        # while its detector and backbone stay chosen.
        self._settings = _model_settings(model)
        self.keep_settings = QCheckBox("")
        self.keep_settings.setChecked(self._settings is not None)
        self.keep_settings.setVisible(self._settings is not None)
        if self._settings is not None:
            if self._settings.detector in self._detectors:
                self.detector.setCurrentText(self._settings.detector)
            if self._settings.backbone in BACKBONES:
                self.backbone.setCurrentText(self._settings.backbone)
        folds = model_folds(model, self._settings) if model is not None else None
        if folds is not None:
            self.folds.setMaximum(max(self.folds.maximum(), folds))
        used = model.info.get("folds") if model is not None else None
        self.folds.setSpecialValueText("auto" + (f" (the model in use: {used})" if used else ""))
        self.folds.setValue(folds or AUTO_FOLDS)
        form = QFormLayout()
        form.addRow("Reference folder", self.reference)
        form.addRow("Bad folder", self.bad)
        form.addRow("Detector", self.detector)
        form.addRow("Backbone", self.backbone)
        form.addRow("Backbone weights", self.weights)
        form.addRow("Calibration folds", self.folds)
        form.addRow("Save model to", self.save_to)
        form.addRow("", self.keep_regions)
        form.addRow("", self.keep_settings)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("Choose the reference folder, then Fit.")
        self.status.setWordWrap(True)
        self.status.setStyleSheet(f"color: {MUTED};")
        self.fit_button = QPushButton("Fit")
        self.fit_button.setObjectName("primary")
        self.cancel_button = QPushButton("Cancel fit")
        self.cancel_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.fit_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

        self.backbone.currentTextChanged.connect(self._backbone_changed)
        self.detector.currentTextChanged.connect(self._detector_changed)
        self._detector_changed(self.detector.currentText())
        self.fit_button.clicked.connect(self.start_fit)
        self.cancel_button.clicked.connect(self.cancel_fit)
        self.close_button.clicked.connect(self.close)
        fitter = station.fitter
        fitter.fit_progress.connect(self._on_progress)
        fitter.fit_finished.connect(self._on_finished)
        fitter.fit_failed.connect(self._on_failed)
        fitter.fit_cancelled.connect(self._on_cancelled)

    def request(self) -> FitRequest:
        """The fit the form describes.

        Raises:
            ValueError: when the reference folder is missing.
        """
        reference = self.reference.path
        if not reference or not os.path.isdir(reference):
            raise ValueError("choose an existing reference folder")
        bad = self.bad.path or None
        if bad and not os.path.isdir(bad):
            raise ValueError(f"bad folder {bad} does not exist")
        kept = self._kept_settings()
        return FitRequest(
            reference_dir=reference,
            bad_dir=bad,
            detector=self.detector.currentText(),
            backbone=self.backbone.currentText(),
            weights=self.weights.path or (kept.weights if kept else None),
            folds=self.folds.value() if self.folds.value() != AUTO_FOLDS else None,
            image_size=kept.image_size if kept else None,
            save_path=self.save_to.path or None,
            mask=mask_picture(self.station.model) if self.keep_regions.isChecked() and self.station.model else None,
            options=dict(kept.options) if kept else {},
            policy=kept.policy if kept else None,
            target=kept.target if kept else None,
        )

    def _kept_settings(self):
        """The model in use's fit settings when they apply to the form (same detector and backbone, box ticked)."""
        settings = self._settings
        if settings is None or not self.keep_settings.isChecked() or not self.keep_settings.isEnabled():
            return None
        return settings

    def start_fit(self) -> None:
        """Validate the form and start the fit on the worker."""
        try:
            request = self.request()
        except ValueError as exc:
            self._say(str(exc), NG_COLOR)
            return
        self._set_running(True)
        self.progress.setRange(0, 0)
        self._say("Fitting…", MUTED)
        self.station.fit(request)

    def cancel_fit(self) -> None:
        """Ask the worker to stop the fit."""
        self.station.cancel_fit()
        self._say("Cancelling…", MUTED)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Closing the dialog cancels a running fit."""
        if self.running:
            self.station.cancel_fit()
        super().closeEvent(event)

    # -- worker answers ----------------------------------------------------------------------

    def _on_progress(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.status.setText(message)

    def _on_finished(self, model, path: str) -> None:
        self._set_running(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        saved = f", saved to {path}" if path else ""
        self._say(f"New model in use ({model.detector_kind}, {model.model_hash[:12]}){saved}. "
                  "Undo with Ctrl+Z.", OK_COLOR)

    def _on_failed(self, message: str) -> None:
        self._set_running(False)
        self.progress.setRange(0, 1)
        self._say(f"Fit failed: {message}", NG_COLOR)

    def _on_cancelled(self) -> None:
        self._set_running(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._say("Fit cancelled; the model in use is unchanged.", MUTED)

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.fit_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _say(self, text: str, color: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(f"color: {color};")

    def _detector_changed(self, kind: str) -> None:
        entry = self._detectors.get(kind)
        self.detector.setToolTip(entry.description if entry else "")
        self.backbone.setEnabled(bool(entry and entry.uses_backbone))
        self._backbone_changed(self.backbone.currentText())

    def _backbone_changed(self, name: str) -> None:
        self.weights.setEnabled(self.backbone.isEnabled() and name.startswith("b"))
        self._sync_keep_settings()

    def _sync_keep_settings(self) -> None:
        settings = getattr(self, "_settings", None)
        if settings is None:
            return
        same = self.detector.currentText() == settings.detector and (
            not self.backbone.isEnabled() or self.backbone.currentText() == settings.backbone)
        options = ", ".join(f"{k} {v}" for k, v in settings.options.items())
        self.keep_settings.setText(f"Keep the model in use's settings: input {settings.image_size} px"
                                   + (f", {options}" if options else "")
                                   + (f", policy {settings.policy}" if settings.policy else ""))
        self.keep_settings.setEnabled(same)
        self.keep_settings.setToolTip("" if same else f"Only for the {settings.detector} detector on "
                                      f"{settings.backbone}, as the model in use")
