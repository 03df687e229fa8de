"""The GUI's pickers are the registries: the refit dialog's detectors and the source bar's kinds."""

from __future__ import annotations

from gui_stubs import stub_model

from inspector.catalog import DEFAULT_DETECTOR
from inspector.detectors.base import detector_catalog
from inspector.gui.source_bar import SourceBar
from inspector.sources.registry import source_kinds


def test_refit_detector_combo_is_the_registry(make_window):
    window = make_window()
    dialog = window.open_refit()  # no model: the default detector
    assert dialog.detector.currentText() == DEFAULT_DETECTOR and dialog.backbone.isEnabled()
    dialog.close()
    window.station.set_model(stub_model(), "")
    window._refit_dialog = None
    dialog = window.open_refit()
    catalog = detector_catalog()
    offered = [dialog.detector.itemText(i) for i in range(dialog.detector.count())]
    assert offered == [entry.kind for entry in catalog]
    assert dialog.detector.currentText() == "test-brightness"  # the model in use's own detector
    for entry in catalog:
        dialog.detector.setCurrentText(entry.kind)
        assert dialog.backbone.isEnabled() == entry.uses_backbone, entry.kind
        assert entry.description in dialog.detector.toolTip()
    dialog.close()


def test_source_bar_offers_every_registered_kind(qtbot, tmp_path):
    bar = SourceBar()
    qtbot.addWidget(bar)
    kinds = source_kinds()
    assert [bar.kind.itemData(i) for i in range(bar.kind.count())] == [kind.name for kind in kinds]
    for index, kind in enumerate(kinds):
        bar.kind.setCurrentIndex(index)
        assert bar.kind.currentText() == kind.label
        assert bar.value.placeholderText() == kind.placeholder
        assert bar.browse_button.isEnabled() == (kind.browse is not None)
    bar.set_spec(f"hotfolder:{tmp_path}")
    assert bar.spec() == f"hotfolder:{tmp_path}"
