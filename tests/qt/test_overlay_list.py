"""The overlay list: each overlay keeps its own colour map, threshold, range and opacity; the selection
and the outlines can be hidden; the colour bar names the overlay and its threshold."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from tests.qt.conftest import open_and_wait


def type_into(qtbot, spin, text):
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, text.replace(".", spin.locale().decimalPoint()))
    qtbot.keyClick(spin, Qt.Key_Return)


def test_a_threshold_for_one_overlay_never_blanks_another(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    view, overlays = window.cortex_view, window.overlay_list
    window.roi_panel.set_checked(["V1"])
    qtbot.waitUntil(lambda: window.trial_view.synthetic is not None, timeout=30000)
    window.cortex_shows.choose("trial")
    window.show_panel(overlays)
    overlays.tree.setCurrentItem(overlays.items["trial"])
    big = float(np.nanmax(np.abs(window.cortex_shows.values()))) * 2
    type_into(qtbot, overlays.threshold, f"{big:.3f}")
    assert window.overlay_layers.style("trial").threshold == round(big, 3)
    assert view.controls.threshold.value() == round(big, 3)  # the cortex tool bar shows the shown overlay's
    type_into(qtbot, view.controls.threshold, f"{big:.3f}")  # typing there keeps its decimals too
    assert window.overlay_layers.style("trial").threshold == round(big, 3)
    lh = view.scenes["lh"]
    assert np.array_equal(lh.base, lh.underlay)  # everything below the trial's threshold
    assert "trial fMRI pattern" in view._scalar_bar.GetTitle() and f"{round(big, 3):.3g}" in view._scalar_bar.GetTitle()

    window.cortex_shows.combo.setCurrentIndex(window.cortex_shows.combo.findData("synthetic"))
    window.cortex_shows.combo.activated.emit(window.cortex_shows.combo.currentIndex())
    assert view.overlay_style["threshold"] is None  # the synthetic pattern's own settings
    assert not np.array_equal(lh.base, lh.underlay)
    assert view._scalar_bar.GetTitle() == "synthetic pattern"
    assert overlays.items["trial"].text(1).startswith("RdBu_r · thr")

    view.controls.cmap.setCurrentText("viridis")  # the tool bar edits the overlay on the cortex, and only it
    assert window.overlay_layers.style("synthetic").cmap == "viridis"
    window.cortex_shows.choose("trial")
    assert view.overlay_style["threshold"] == round(big, 3) and view.overlay_style["cmap"] == "RdBu_r"  # and back


def test_each_layer_is_shown_hidden_and_faded_from_the_list(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    view, overlays = window.cortex_view, window.overlay_list
    window.show_panel(overlays)
    window.roi_panel.set_checked(["V1"])
    lh = view.scenes["lh"]
    outline = lh.outline >= 0
    assert outline.any() and lh.fill.any()
    assert not np.array_equal(lh.colors[outline], lh.base[outline])

    overlays.items["outlines"].setCheckState(0, Qt.Unchecked)
    assert not lh.show_outlines
    drawn = lh.outline >= 0
    plain = drawn & (lh.fill == 0)
    np.testing.assert_array_equal(lh.colors[plain], lh.base[plain])

    overlays.tree.setCurrentItem(overlays.items["selection"])
    type_into(qtbot, overlays.opacity, "0.2")
    assert lh.fill_alpha == 0.2
    overlays.items["selection"].setCheckState(0, Qt.Unchecked)
    selected = lh.fill > 0
    np.testing.assert_array_equal(lh.colors[selected], lh.base[selected])  # its edge too

    # the trial pattern at half opacity lies between the grey underlay and its full colour
    window.cortex_shows.choose("trial")
    full = lh.base.copy()
    overlays.tree.setCurrentItem(overlays.items["trial"])
    type_into(qtbot, overlays.opacity, "0.5")
    coloured = np.any(full != lh.underlay, axis=1)
    expected = (full[coloured] * 0.5 + lh.underlay[coloured] * 0.5).round()
    assert np.abs(lh.base[coloured].astype(float) - expected).max() <= 1.0

    # turning a data layer on makes the cortex show it
    overlays.items["synthetic"].setCheckState(0, Qt.Checked)
    assert window.cortex_shows.combo.currentData() == "synthetic"
    assert overlays.items["synthetic"].checkState(0) == Qt.Checked
    assert overlays.items["trial"].checkState(0) == Qt.Unchecked
