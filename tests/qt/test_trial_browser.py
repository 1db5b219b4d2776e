"""The trial table: sorting, the worst-first preset, filtering, and keyboard navigation."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from brainview.qt.trial_browser import TRIAL_ROLE
from brainview.state.session import CaptionScores
from tests.conftest import N_TRIALS
from tests.qt.conftest import open_and_wait


def _planted_scores(session):
    """Known per-trial scores: trial 7 has the worst METEOR, trial 3 the worst image rank."""
    meteor = np.linspace(0.2, 0.9, N_TRIALS)
    meteor[7] = 0.01
    ranks = np.ones(N_TRIALS)
    ranks[3] = 9
    scores = {s: {"meteor": meteor.copy(), "rougeL": meteor[::-1].copy()} for s in session.stages}
    captions = {s: [f"decoded {s} {t}" for t in range(N_TRIALS)] for s in session.stages}
    session.set_caption_scores(CaptionScores(captions, scores, {"sentence": "no model here"}))
    session.scores["stage2"]["image_rank"] = ranks
    session._emit("scores")


def test_worst_first_finds_the_worst_trial(qtbot, window, retrieval_only_bundle):
    open_and_wait(qtbot, window, retrieval_only_bundle.path)
    browser = window.browser
    _planted_scores(window.session)
    browser.score_combo.setCurrentIndex(browser.score_combo.findData("meteor"))
    qtbot.mouseClick(browser.worst_button, Qt.LeftButton)
    assert browser.current_trial() == 7 and window.session.trial == 7
    assert window.trial_view.title.text().startswith("Trial t0007")
    browser.score_combo.setCurrentIndex(browser.score_combo.findData("image_rank"))
    browser.worst_first()
    assert window.session.trial == 3  # ranks: higher is worse
    # the histogram follows the chosen score and marks this trial
    assert "image rank" in window.trial_view.plots.histogram.plotItem.titleLabel.text


def test_sorting_a_column_puts_missing_values_last(qtbot, window, retrieval_only_bundle):
    open_and_wait(qtbot, window, retrieval_only_bundle.path)
    browser = window.browser
    column = browser.model.score_column("meteor")
    browser.table.sortByColumn(column, Qt.AscendingOrder)  # nothing computed yet: order unchanged, no error
    _planted_scores(window.session)
    assert browser.proxy.index(0, column).data() == "0.010"
    browser.table.sortByColumn(column, Qt.DescendingOrder)
    assert browser.proxy.index(0, column).data() == "0.900"
    sentence = browser.model.score_column("sentence")
    assert browser.proxy.index(0, sentence).data() == "—"
    assert "no model here" in browser.model.headerData(sentence, Qt.Horizontal, Qt.ToolTipRole)


def test_filter_matches_ids_and_captions(qtbot, window, retrieval_only_bundle):
    open_and_wait(qtbot, window, retrieval_only_bundle.path)
    browser = window.browser
    qtbot.keyClicks(browser.filter_edit, "t0011")
    assert browser.proxy.rowCount() == 1 and "1 of" in browser.count_label.text()
    browser.filter_edit.clear()
    qtbot.keyClicks(browser.filter_edit, "OF TRIAL 1")  # reference captions, case-insensitive: 1, 10, 11
    assert browser.proxy.rowCount() == 3
    browser.filter_edit.clear()
    assert browser.proxy.rowCount() == N_TRIALS


def test_keyboard_moves_through_the_sorted_order(qtbot, window, retrieval_only_bundle):
    open_and_wait(qtbot, window, retrieval_only_bundle.path)
    browser = window.browser
    _planted_scores(window.session)
    browser.score_combo.setCurrentIndex(browser.score_combo.findData("meteor"))
    browser.worst_first()
    order = [int(browser.proxy.index(r, 0).data(TRIAL_ROLE)) for r in range(3)]
    qtbot.keyClick(browser.table, Qt.Key_Down)
    assert window.session.trial == order[1]
    qtbot.keyClick(browser.table, Qt.Key_Down)
    assert window.session.trial == order[2]
    # a trial chosen elsewhere becomes the current row
    window.session.set_trial(5)
    assert browser.current_trial() == 5


def test_column_titles_fit_their_columns(qtbot, window, retrieval_only_bundle):
    """Every title but the captions' is whole at the default widths (the phrase match columns included)."""
    open_and_wait(qtbot, window, retrieval_only_bundle.path)
    table, model = window.browser.table, window.browser.model
    metrics = table.horizontalHeader().fontMetrics()
    for column, (kind, _) in enumerate(model.columns):
        table.setColumnHidden(column, False)  # the match columns show with a search result
        if kind != "caption":
            title = model.headerData(column, Qt.Horizontal)
            assert table.columnWidth(column) >= metrics.horizontalAdvance(title) + metrics.horizontalAdvance("M"), title
