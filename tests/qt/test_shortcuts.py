"""Every key the window advertises, pressed as a person does: on the widget that has focus."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from tests.qt.conftest import open_and_wait

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def shown(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    return window


def focus(qtbot, widget):
    widget.setFocus(Qt.FocusReason.OtherFocusReason)
    qtbot.waitUntil(widget.hasFocus, timeout=2000)
    return widget


def test_no_key_is_bound_twice(shown):
    """Two bindings of one key are ambiguous to Qt, which then runs neither (Ctrl+Z did nothing)."""
    seen, local = {}, {}
    for action in shown.findChildren(QAction):
        for key in action.shortcuts():
            name = key.toString()
            if action.shortcutContext() == Qt.ShortcutContext.WidgetShortcut:
                local[name] = action.text()  # only while its own widget has the focus (Copy on a caption list)
                continue
            assert name not in seen, f"{name} is bound to {seen.get(name)} and {action.text()}"
            seen[key.toString()] = action.text()
    for name, text in local.items():  # ...where a window-wide binding of the same key would be ambiguous
        assert name not in seen, f"{name} is bound to {seen[name]} and, in its widget, to {text}"


@pytest.mark.parametrize("where", ["rois", "cortex", "trials"])
def test_undo_and_redo_keys_work_wherever_the_focus_is(qtbot, shown, where):
    window = shown
    selection = window.session.selection
    undo, redo = window.edit_actions.undo, window.edit_actions.redo
    assert not undo.isEnabled() and not redo.isEnabled()
    names = list(window.session.bundle.rois)[:2]
    window.roi_panel.set_checked(names[:1])
    window.roi_panel.set_checked(names)  # two undo steps
    assert undo.isEnabled() and not redo.isEnabled()
    widget = {"rois": window.roi_panel.tree, "cortex": window.cortex_view._vtk, "trials": window.browser.table}[where]
    focus(qtbot, widget)
    qtbot.keyClick(widget, Qt.Key_Z, CTRL)
    assert selection.atlas_rois == tuple(names[:1])
    assert window.roi_panel.checked() == names[:1]  # the panel mirrors the one stack
    assert undo.isEnabled() and redo.isEnabled()
    qtbot.keyClick(widget, Qt.Key_Z, CTRL)
    assert selection.is_empty() and not undo.isEnabled()
    redo_key = QKeySequence(QKeySequence.StandardKey.Redo)[0]
    qtbot.keyClick(widget, redo_key.key(), redo_key.keyboardModifiers())
    assert selection.atlas_rois == tuple(names[:1])
    qtbot.keyClick(widget, Qt.Key_Z, CTRL | SHIFT)  # the key the tooltips name, on every platform
    assert selection.atlas_rois == tuple(names) and not redo.isEnabled()


def test_clear_and_a_loaded_roi_are_undo_steps(qtbot, shown, tmp_path):
    window = shown
    selection = window.session.selection
    window.roi_panel.set_checked(list(window.session.bundle.rois)[:1])
    checked = selection.voxels()
    path = window.roi_panel.save(tmp_path / "roi.json")[0]
    qtbot.mouseClick(window.roi_panel.clear_button, Qt.LeftButton)
    assert selection.is_empty()
    assert window.roi_panel.load(path)
    np.testing.assert_array_equal(selection.voxels(), checked)
    focus(qtbot, window.roi_panel.tree)
    qtbot.keyClick(window.roi_panel.tree, Qt.Key_Z, CTRL)  # the load
    assert selection.is_empty()
    qtbot.keyClick(window.roi_panel.tree, Qt.Key_Z, CTRL)  # the clear
    np.testing.assert_array_equal(selection.voxels(), checked)


def test_brush_keys_and_camera_reset_with_the_cortex_focused(qtbot, shown):
    window = shown
    view = window.cortex_view
    vtk = focus(qtbot, view._vtk)
    qtbot.keyClick(vtk, Qt.Key_B)
    assert view.brush_enabled and view.controls.brush.isChecked() and window.edit_actions.brush.isChecked()
    radius = view.brush_radius
    qtbot.keyClick(vtk, Qt.Key_BracketRight)
    qtbot.keyClick(vtk, Qt.Key_BracketRight)
    assert view.brush_radius == radius + 2 and view.controls.radius.value() == radius + 2
    qtbot.keyClick(vtk, Qt.Key_BracketLeft)
    assert view.brush_radius == radius + 1
    qtbot.keyClick(vtk, Qt.Key_E)
    assert view.brush_erase and view.controls.erase.isChecked()
    qtbot.keyClick(vtk, Qt.Key_E)
    assert not view.brush_erase
    qtbot.keyClick(vtk, Qt.Key_B)
    assert not view.brush_enabled and not window.edit_actions.brush.isChecked()
    camera = view.scenes["lh"].renderer.GetActiveCamera()
    camera.Azimuth(40)
    camera.Zoom(1.5)
    assert view.camera_moved
    qtbot.keyClick(vtk, Qt.Key_R)
    assert not view.camera_moved


def test_letter_keys_still_type_into_text_fields(qtbot, shown):
    """B, E, R and the brackets are window keys, yet a question box still receives them as text."""
    window = shown
    window.show_panel(window.language_panel)
    from PySide6.QtWidgets import QLineEdit

    line = window.language_panel.findChildren(QLineEdit)[0]
    focus(qtbot, line)
    qtbot.keyClicks(line, "bear[]")
    assert line.text() == "bear[]"
    assert not window.cortex_view.brush_enabled


@pytest.mark.parametrize("where", ["cortex", "rois"])
def test_step_trials_from_any_panel(qtbot, shown, where):
    window = shown
    widget = focus(qtbot, window.cortex_view._vtk if where == "cortex" else window.roi_panel.tree)
    first = window.session.trial
    qtbot.keyClick(widget, Qt.Key_Down, CTRL)
    qtbot.keyClick(widget, Qt.Key_Down, CTRL)
    assert window.session.trial != first
    qtbot.keyClick(widget, Qt.Key_Up, CTRL)
    qtbot.keyClick(widget, Qt.Key_Up, CTRL)
    assert window.session.trial == first


def test_f1_lists_every_key_from_the_actions(qtbot, shown, monkeypatch):
    from brainview.qt import help as help_module

    opened = []
    monkeypatch.setattr(help_module.QtShortcutTable, "exec", lambda self: opened.append(self) or 0)
    widget = focus(qtbot, shown.browser.table)
    qtbot.keyClick(widget, Qt.Key_F1)
    assert len(opened) == 1
    table = opened[0].table
    listed = {table.item(row, 1).text() for row in range(table.rowCount())}
    for action in shown.findChildren(QAction):
        if action.shortcuts() and action.text():
            assert action.text().replace("&", "").rstrip("…") in listed
    assert {"Undo selection change", "Redo selection change", "Brush", "Brush larger", "Reset the camera"} <= listed
    # wide enough for its text: no column is cut
    header = table.horizontalHeader()
    assert header.length() <= table.viewport().width() + 1
    opened[0].deleteLater()
