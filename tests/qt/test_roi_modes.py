"""The ROI panel's modes beyond the paper's (issue 26): the manifold caption and the preferred-stimuli
view, live as the selection changes, on the demo bundle (whose planted preferences are known)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from tests.qt.conftest import open_and_wait

from brainview.paths import demo_bundle_path
from training.demo_world.roi_rule import matches


def choose_mode(panel, mode):
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData(mode))  # as choosing it in the list does


def test_preferred_stimuli_view_follows_the_selection(qtbot, window):
    open_and_wait(qtbot, window, demo_bundle_path())
    panel, view, dock = window.roi_panel, window.preferred_view, window.preferred_dock
    assert not dock.isVisible()
    choose_mode(panel, "data")
    assert dock.isVisible() and not view.thumbnails
    panel.roi_items()["floc-faces"].setCheckState(0, Qt.Checked)
    qtbot.waitUntil(lambda: view.found is not None and view.found.n_voxels == 48, timeout=30000)
    assert len(view.thumbnails) == 10
    rows = {view.table.item(r, 0).text(): r for r in range(view.table.rowCount())}
    row = rows["scene.category"]
    assert view.table.item(row, 1).text() == "face" and view.table.item(row, 2).text() == "10/10"
    assert float(view.table.item(row, 4).text()) > float(view.table.item(row, 5).text())  # beats random sets
    assert float(view.table.item(row, 3).text()) < 0.05 and view.table.item(row, 1).font().bold()
    assert "demo-" in view.thumbnails[0].toolTip() and "face" in view.thumbnails[0].toolTip()
    # the synthetic column captions the preferred images' mean tokens
    qtbot.waitUntil(lambda: window.trial_view.synthetic is not None
                    and not window.trial_view.synthetic.caption_pending, timeout=30000)
    assert "preferred stimuli" in window.trial_view.synthetic_box.subtitle.text()
    # another region: the view follows
    panel.set_checked(["floc-words"])
    qtbot.waitUntil(lambda: view.found is not None and view.found.n_voxels == 10, timeout=30000)
    assert view.found.check("scene.category").value == "sign"
    # back to the paper's mode: the view stops computing, the scale row comes back
    choose_mode(panel, "roi")
    assert panel.form.isRowVisible(panel.scale_spin)


def test_manifold_mode_captions_the_region_on_natural_images(qtbot, window):
    open_and_wait(qtbot, window, demo_bundle_path())
    panel, trial_view = window.roi_panel, window.trial_view
    choose_mode(panel, "manifold")
    assert not panel.form.isRowVisible(panel.scale_spin)
    panel.roi_items()["floc-bodies"].setCheckState(0, Qt.Checked)
    # the caption streams in token by token: wait for the whole of it
    qtbot.waitUntil(lambda: trial_view.synthetic is not None and not trial_view.synthetic.caption_pending
                    and trial_view.synthetic.settings.mode == "manifold", timeout=30000)
    caption = trial_view.synthetic.decoded.caption
    assert matches("floc-bodies", caption), caption
    assert "manifold" in trial_view.synthetic_box.subtitle.text() and trial_view.synthetic.trial is None
    assert not window.preferred_dock.isVisible()


def test_the_selection_says_how_many_painted_vertices_have_no_voxel(qtbot, window):
    """The demo maps only its visual areas to voxels: a stroke elsewhere paints vertices that add nothing,
    and the ROI panel says how many (they are drawn amber on the cortex)."""
    import numpy as np

    open_and_wait(qtbot, window, demo_bundle_path())
    cortex = window.session.cortex
    unmapped = np.flatnonzero(cortex.main_voxel < 0)[:5]
    window.session.selection.paint(unmapped)
    assert window.roi_panel.selection_label.text() == \
        "Selection: 0 voxels (5 vertices painted, 5 with no voxel: amber)"
