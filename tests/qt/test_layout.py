"""Layouts that fit: at 1366×768 and 1920×1080, with the Subjects dock and the Ask-in-language tab open,
no panel is narrower than its minimum size hint, the window keeps the size asked for, and results
arriving never re-flow the window."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter

from tests.qt.conftest import open_and_wait

SIZES = [(1366, 768), (1920, 1080)]


def panels(window):
    return {"subjects": window.subjects_panel, "trials": window.browser, "left tabs": window.left_tabs,
            "ask in language": window.language_panel, "trial": window.trial_view, "plots": window.trial_view.plots,
            "cortex": window.cortex_view, "cortex tools": window.cortex_view.controls}


def assert_panels_fit(window):
    for name, widget in panels(window).items():
        hint = widget.minimumSizeHint()
        assert widget.width() >= hint.width(), f"{name} is {widget.width()} px wide, needs {hint.width()}"
        assert widget.height() >= min(hint.height(), 1), name


def splitter_sizes(window):
    return {s.objectName(): s.sizes() for s in window.findChildren(QSplitter) if s.objectName()}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_panel_fits_with_the_subjects_dock_open(qtbot, window, app_bundle, size):
    window.resize(*size)
    open_and_wait(qtbot, window, app_bundle.path)
    window.subjects_dock.show()
    window.show_panel(window.language_panel)
    qtbot.waitUntil(lambda: window.subjects_panel.isVisible() and window.language_panel.isVisible())
    qtbot.wait(50)
    assert window.size().toTuple() == size  # no minimum forced the window wider or taller
    assert window.minimumSizeHint().width() <= size[0] and window.minimumSizeHint().height() <= size[1]
    assert_panels_fit(window)
    # the dock's contents, too: the panel inside its scroll area is never cut at the right edge
    scroller = window.subjects_dock.widget()
    assert scroller.viewport().width() >= window.subjects_panel.minimumSizeHint().width()
    assert window.browser.table.height() >= 4 * window.browser.table.verticalHeader().defaultSectionSize()


def test_the_right_hand_docks_share_their_area_as_tabs(qtbot, window, app_bundle):
    """The Subjects dock and the preferred-stimuli dock, both open, are tabs of one area with the newest in
    front, each as tall as the area, not two halves."""
    from PySide6.QtWidgets import QTabBar

    window.resize(1366, 768)
    open_and_wait(qtbot, window, app_bundle.path)
    window.subjects_dock.show()
    window.roi_panel.mode_combo.setCurrentIndex(window.roi_panel.mode_combo.findData("data"))
    qtbot.waitUntil(lambda: window.preferred_dock.isVisible())
    assert window.preferred_dock in window.tabifiedDockWidgets(window.subjects_dock)
    tabs = [bar for bar in window.findChildren(QTabBar) if bar.count() == 2 and bar.isVisible()
            and {bar.tabText(0), bar.tabText(1)} == {"Subjects", "Preferred stimuli"}]
    assert len(tabs) == 1 and tabs[0].tabText(tabs[0].currentIndex()) == "Preferred stimuli"
    assert window.preferred_dock.height() == window.subjects_dock.height()
    assert window.preferred_dock.width() <= 0.45 * 1366  # the trial view keeps the rest
    assert_panels_fit(window)
    # a click on the other tab brings the Subjects panel forward
    qtbot.mouseClick(tabs[0], Qt.LeftButton, pos=tabs[0].tabRect(1 - tabs[0].currentIndex()).center())
    assert tabs[0].tabText(tabs[0].currentIndex()) == "Subjects" and window.subjects_panel.isVisible()


def test_results_arriving_never_reflow_the_window(qtbot, window, app_bundle):
    window.resize(1366, 768)
    open_and_wait(qtbot, window, app_bundle.path)
    qtbot.wait(50)
    before = (window.size().toTuple(), splitter_sizes(window))
    window.roi_panel.set_checked(["V1"])
    qtbot.waitUntil(lambda: bool(window.trial_view.synthetic and window.trial_view.synthetic.decoded.caption),
                    timeout=30000)
    window.session.set_trial(3)
    qtbot.wait(200)
    assert (window.size().toTuple(), splitter_sizes(window)) == before


def test_captions_sit_beside_the_retrievals_only_where_both_fit(qtbot, window, app_bundle):
    from PySide6.QtWidgets import QBoxLayout

    from brainview.qt.trial_view import SIDE_BY_SIDE_WIDTH

    open_and_wait(qtbot, window, app_bundle.path)
    view = window.trial_view
    for size, direction in (((1920, 1080), QBoxLayout.LeftToRight), ((1366, 768), QBoxLayout.TopToBottom),
                            ((1920, 1080), QBoxLayout.LeftToRight)):
        window.subjects_dock.setVisible(size[0] < 1920)
        window.resize(*size)
        qtbot.waitUntil(lambda: (view.width() >= SIDE_BY_SIDE_WIDTH) == (direction == QBoxLayout.LeftToRight))
        qtbot.wait(20)
        assert view.columns.direction() == direction, size
