"""The station window's actions, their keyboard shortcuts, and the toolbar that shows them.

Every action is added to the window (shortcuts work on any tab) with a window-wide shortcut
context, and its tooltip names its shortcut. The window keeps each one as an attribute
(``run_action``, ``mark_good_action``, ...), which the window's slots and the tests use.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar, QToolButton

from inspector.gui.icons import play_icon, step_icon, stop_icon


def add_action(window: QMainWindow, text: str, shortcut: str | None, slot, tip: str = "",
               icon: QIcon | None = None) -> QAction:
    """A window-wide action calling ``slot``, with ``shortcut`` (or none) named in its tooltip."""
    action = QAction(text, window)
    if icon is not None:
        action.setIcon(icon)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.setToolTip(f"{tip or text} ({action.shortcut().toString()})" if shortcut else (tip or text))
    action.triggered.connect(slot)
    window.addAction(action)
    return action


def build_actions(window) -> None:
    """Create the station window's actions as its attributes, and its toolbar.

    Args:
        window: The :class:`~inspector.gui.main_window.MainWindow`; its commands are the slots,
            and it gets ``run_action`` ... ``quit_action``, ``refit_button`` and the toolbar.
    """
    w = window
    w.run_action = add_action(w, "Start", "Space", w.toggle_run, "Start / pause", play_icon())
    w.step_action = add_action(w, "Step", "S", w.station.step, "Inspect a single frame", step_icon())
    w.stop_action = add_action(w, "Stop", None, w.station.stop, "Stop and release the source", stop_icon())
    w.open_model_action = add_action(w, "Open model…", "O", w.open_model)
    w.save_model_action = add_action(w, "Save model…", "Ctrl+S", w.save_model)
    w.refit_action = add_action(w, "Refit…", "Ctrl+R", w.open_refit, "Refit from reference images")
    w.undo_action = add_action(w, "Undo model", "Ctrl+Z", w.undo_model, "Go back to the previous model")
    w.mark_good_action = add_action(w, "Mark good", "G", lambda: w.mark_current("good"),
                                    "The decision shown is a false reject: keep the image as good")
    w.mark_defect_action = add_action(w, "Mark defect", "D", lambda: w.mark_current("bad"),
                                      "The decision shown is an escape: keep the image as a defect")
    # QAction.triggered passes checked=False: the slots with optional arguments get none.
    w.refit_feedback_action = add_action(w, "Refit with feedback", "Ctrl+Shift+R", lambda: w.refit_with_feedback(),
                                         "Fit a new model on the references plus the images marked good")
    w.regions_action = add_action(w, "Regions…", "Ctrl+Shift+M", lambda: w.open_regions(),
                                  "Draw the regions to inspect and to ignore, then refit")
    w.audit_tab_action = add_action(w, "Audit", "Ctrl+4", lambda: w.tabs.setCurrentWidget(w.audit_view))
    w.undo_action.setEnabled(False)
    w.batch_action = add_action(w, "Batch…", "Ctrl+B", w.open_batch, "Review a folder batch")
    w.calibrate_action = add_action(w, "Calibrate", "Ctrl+K", lambda: w.tabs.setCurrentIndex(1))
    w.station_action = add_action(w, "Station", "Ctrl+1", lambda: w.tabs.setCurrentIndex(0))
    w.fullscreen_action = add_action(w, "Full screen", "F11", w.toggle_fullscreen)
    w.quit_action = add_action(w, "Quit", "Ctrl+Q", w.close)
    w.addToolBar(_toolbar(w))


def _toolbar(w) -> QToolBar:
    bar = QToolBar("Station")
    bar.setMovable(False)
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    bar.addWidget(w.source_bar)
    bar.addSeparator()
    for action in (w.run_action, w.step_action, w.stop_action):
        bar.addAction(action)
    bar.addSeparator()
    for action in (w.open_model_action, w.save_model_action):
        bar.addAction(action)
    # Refit, with its variants in the drop-down (the toolbar fits 1280 px with Undo and Batch).
    refit_menu = QMenu(w)
    refit_menu.addAction(w.refit_action)
    refit_menu.addAction(w.refit_feedback_action)
    refit_menu.addAction(w.regions_action)
    w.refit_button = QToolButton()
    w.refit_button.setDefaultAction(w.refit_action)
    w.refit_button.setMenu(refit_menu)
    w.refit_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
    bar.addWidget(w.refit_button)
    for action in (w.undo_action, w.batch_action):
        bar.addAction(action)
    return bar
