"""The window's keyboard actions for the selection and the cortex: one Undo/Redo pair over the
selection's single undo stack (brush strokes, ROI checks, clear, loaded ROIs), the brush keys and the
camera reset.

Every key lives on a window-wide ``QAction`` (never on a widget-local ``QShortcut``: two of those for
the same key make Qt call the key ambiguous and run neither), so the keys work whichever panel has
focus, the cortex included, and the Help menu's shortcut list (built from the actions) cannot drift.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence

BRUSH_STEP_MM = 1.0
BRUSH_LIMITS_MM = (0.5, 50.0)


class QtEditActions(QObject):
    """Undo/Redo whose enabled states follow the session's selection, and the cortex's brush/camera keys."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self._listened = None  # (selection, callback) while a bundle is shown
        self.undo = self._action("&Undo selection change", QKeySequence.StandardKey.Undo, self._undo,
                                 "Undo the last brush stroke, ROI check, clear or loaded ROI")
        self.redo = self._action("&Redo selection change", QKeySequence.StandardKey.Redo, self._redo,
                                 "Redo the last undone selection change")
        self.undo.setIconText("Undo")  # the toolbar's short names
        self.redo.setIconText("Redo")
        redo_keys = self.redo.shortcuts()
        if QKeySequence("Ctrl+Shift+Z") not in redo_keys:  # the platform's key (Ctrl+Y on some) and the usual one
            self.redo.setShortcuts(redo_keys + [QKeySequence("Ctrl+Shift+Z")])
        view = window.cortex_view
        self.cortex = []  # the cortex's keys (none without VTK)
        if view is not None:
            self.brush = self._action("&Brush", "B", view.set_brush_enabled, "Paint the selection on the cortex",
                                      checkable=True)
            self.erase = self._action("&Erase with the brush", "E", view.set_brush_erase,
                                      "Left drag erases instead of painting", checkable=True)
            self.smaller = self._action("Brush s&maller", "[", lambda: self._grow_brush(-BRUSH_STEP_MM),
                                        "Brush radius 1 mm smaller")
            self.larger = self._action("Brush &larger", "]", lambda: self._grow_brush(BRUSH_STEP_MM),
                                       "Brush radius 1 mm larger")
            self.reset_view = self._action("Reset the &camera", "R", lambda: view.set_camera_state(None),
                                           "Back to the camera preset (after rotating or zooming)")
            self.cortex = [self.brush, self.erase, self.smaller, self.larger, self.reset_view]
            view.controls.changed.connect(self._sync_cortex)
            self._sync_cortex()
        window.session.connect("bundle", lambda session: self._listen())
        self._sync_undo()

    def _action(self, text: str, keys, slot, tip: str, checkable: bool = False) -> QAction:
        action = QAction(text, self.window, toolTip=tip, checkable=checkable)
        action.setShortcuts(QKeySequence.keyBindings(keys) if isinstance(keys, QKeySequence.StandardKey)
                            else [QKeySequence(keys)])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot) if checkable else action.triggered.connect(lambda checked=False: slot())
        self.window.addAction(action)  # active with or without a visible menu or toolbar holding it
        return action

    # -- undo ------------------------------------------------------------------------------------
    def _undo(self) -> None:
        if self.window.session.selection is not None:
            self.window.session.selection.undo()

    def _redo(self) -> None:
        if self.window.session.selection is not None:
            self.window.session.selection.redo()

    def _listen(self) -> None:
        """Follow the new bundle's selection (each bundle has its own)."""
        if self._listened is not None:
            self._listened[0].disconnect(self._listened[1])
        selection = self.window.session.selection
        self._listened = (selection, selection.on_change(lambda sel: self._sync_undo())) if selection else None
        self._sync_undo()

    def _sync_undo(self) -> None:
        selection = self.window.session.selection
        self.undo.setEnabled(bool(selection is not None and selection.can_undo))
        self.redo.setEnabled(bool(selection is not None and selection.can_redo))

    # -- cortex ----------------------------------------------------------------------------------
    def _grow_brush(self, step: float) -> None:
        view = self.window.cortex_view
        low, high = BRUSH_LIMITS_MM
        view.set_brush_radius(min(max(view.brush_radius + step, low), high))
        self.window.statusBar().showMessage(f"Brush radius {view.brush_radius:.1f} mm", 3000)

    def _sync_cortex(self) -> None:
        view = self.window.cortex_view
        for action, on in ((self.brush, view.brush_enabled), (self.erase, view.brush_erase)):
            action.blockSignals(True)
            action.setChecked(on)
            action.blockSignals(False)
