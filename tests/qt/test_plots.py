"""The app's pyqtgraph plots (issue 22, item 8): an empty plot shows no axes, only why it is empty, and its
axes come back with data; the concept chart draws each bar from 0 to its value (down when negative) in a
range set from the values on the first draw."""

from __future__ import annotations

import pytest

from tests.qt.conftest import open_and_wait


def _axes_shown(plot) -> bool:
    return plot.getAxis("left").isVisible() and plot.getAxis("bottom").isVisible()


def _shows_reason(plot) -> bool:
    return plot.reason_label in plot.plotItem.items and plot.reason_label.toPlainText() == plot.empty_reason


def test_an_empty_plot_has_no_axes_and_says_why_until_data_arrives(qtbot, window, app_bundle):
    plots, language = window.trial_view.plots, window.language_panel
    every = (plots.histogram, plots.profile, language.search_plot, language.confusion_plot, language.roi_plot)
    for plot in every:  # no bundle: no axes, no grid, no title, the reason in the middle
        assert plot.is_empty and not _axes_shown(plot) and _shows_reason(plot), plot.empty_reason
        assert not plot.getAxis("left").grid and not plot.plotItem.titleLabel.text
    assert plots.histogram.empty_reason == plots.profile.empty_reason == "no bundle open"
    assert language.roi_plot.empty_reason == "no bundle is open"

    open_and_wait(qtbot, window, app_bundle.path)
    qtbot.waitUntil(lambda: window.session.ranks_ready, timeout=60000)
    for plot in (plots.histogram, plots.profile):  # data: the axes, the grid and the title come back
        assert not plot.is_empty and _axes_shown(plot) and plot.getAxis("left").grid
        assert plot.reason_label not in plot.plotItem.items and plot.plotItem.titleLabel.text
    # a score nobody computed yet empties the histogram again, with the score's name and why
    window.session.set_score_name("rougeL")
    assert plots.histogram.is_empty and not _axes_shown(plots.histogram)
    assert plots.histogram.empty_reason.endswith("no scores yet") and _shows_reason(plots.histogram)
    window.session.set_score_name("image_rank")
    assert not plots.histogram.is_empty and _axes_shown(plots.histogram)
    # the language plots: no query yet, said as such
    assert language.roi_plot.empty_reason.startswith("no concept map yet")
    assert language.search_plot.empty_reason.startswith("no search yet")


def test_a_long_plot_title_is_elided_with_the_full_text_in_its_tooltip(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    qtbot.waitUntil(lambda: window.session.ranks_ready, timeout=60000)
    plot = window.trial_view.plots.histogram
    full = plot.full_title
    assert full.startswith("image rank") and "this trial" in full
    plot.resize(120, 200)
    assert plot.plotItem.titleLabel.text.endswith("…") and plot.toolTip() == full
    plot.resize(900, 200)
    assert plot.plotItem.titleLabel.text == full and plot.toolTip() == ""


@pytest.mark.parametrize("means", [{"V1": 0.4, "FFA-1": 0.1, "PPA": -0.25}, {"V1": -0.3, "V2": -0.05},
                                   {"V1": 0.02, "V2": 0.5}])
def test_the_concept_chart_draws_each_bar_from_zero_in_a_range_set_on_the_first_draw(qtbot, window, means):
    chart = window.language_panel.roi_plot
    chart.show_means(means)
    assert not chart.is_empty and _axes_shown(chart)
    bars = chart.bars
    values = list(means.values())
    for value, y0, height in zip(values, bars.opts["y0"], bars.opts["height"]):
        assert height >= 0 and (y0, y0 + height) == pytest.approx((min(value, 0), max(value, 0)))  # [v, 0] or [0, v]
    low, high = min(0, *values), max(0, *values)
    assert bars.dataBounds(1) == pytest.approx((low, high))
    # the view range, read at once (no paint, no auto-range pass): 0 and every value in, the same padding
    # below and above, every bar across
    (x_low, x_high), (y_low, y_high) = chart.viewRange()
    assert y_low < low <= 0 <= high < y_high
    assert high - low == pytest.approx(12.5 * (y_high - high)) and y_high - high == pytest.approx(low - y_low)
    assert x_low < -0.35 and x_high > len(values) - 1 + 0.35
    chart.show_means(None)
    assert chart.is_empty and not _axes_shown(chart) and chart.bars is None
