"""The language panel: search while typing (debounced, in workers), zero-shot labels, concept maps on the cortex."""

from __future__ import annotations

import threading

import numpy as np

from brainview.state.language import LanguageTools
from tests.qt.conftest import open_and_wait


def record_threads(monkeypatch, name):
    """Wrap ``LanguageTools.<name>`` so each call notes the thread it ran on."""
    threads = []
    original = getattr(LanguageTools, name)

    def wrapped(*args, **kwargs):
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(LanguageTools, name, wrapped if name != "prepare" else staticmethod(wrapped))
    return threads


def test_search_fills_the_browser_off_the_gui_thread(qtbot, window, app_bundle, monkeypatch):
    searches = record_threads(monkeypatch, "run_search")
    loads = record_threads(monkeypatch, "prepare")
    open_and_wait(qtbot, window, app_bundle.path)
    panel, browser, tools = window.language_panel, window.browser, window.session.language
    window.show_panel(panel)
    column = browser.model.column_of("match", "brain")
    assert browser.table.isColumnHidden(column)
    phrase = "caption 1 of trial 3"
    with qtbot.waitSignal(panel.search_done, timeout=60000):
        qtbot.keyClicks(panel.search_edit, phrase)  # one keystroke at a time, as typed
    qtbot.waitUntil(lambda: tools.search is not None and tools.search.phrase == phrase, timeout=30000)
    main = threading.main_thread()
    assert loads and all(t is not main for t in loads), "the text encoder loaded on the GUI thread"
    assert searches and all(t is not main for t in searches), "the search ran on the GUI thread"
    assert len(searches) < len(phrase)  # debounced: not one search per keystroke
    result = tools.search
    np.testing.assert_allclose(result.brain, tools.probe.search(phrase).brain)
    assert not browser.table.isColumnHidden(column)
    for row in range(window.session.n_trials):
        shown = browser.model.index(row, column).data()
        assert shown == f"{result.brain[row]:.3f}"
    panel.best_button.click()
    assert browser.current_trial() == int(result.order[0]) == window.session.trial
    first = panel.match_thumbnails[0]
    assert first.isVisibleTo(panel) and first.trial == int(result.order[0])
    first.clicked.emit(int(result.order[1]))
    assert window.session.trial == int(result.order[1])
    panel.search_edit.clear()
    assert tools.search is None and browser.table.isColumnHidden(column)


def test_zero_shot_shows_accuracy_and_confusion(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    panel, tools = window.language_panel, window.session.language
    panel.truth_combo.setCurrentIndex(panel.truth_combo.findData("nsd_id"))
    panel.labels_edit.setText("0, 1=caption 0 of trial 1;caption 1 of trial 1, 2")
    panel.classify_button.click()
    qtbot.waitUntil(lambda: tools.zero_shot is not None, timeout=60000)
    result = tools.zero_shot
    assert result.names == ["0", "1", "2"] and result.accuracy.n == 3
    assert panel.confusion_image.image.shape == (3, 3)
    assert "top-1" in panel.accuracy_label.text() and "true image tokens" in panel.accuracy_label.text()
    assert "brain:" in panel.trial_labels.text()


def test_concept_map_reaches_the_cortex_and_the_selection(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    panel, session = window.language_panel, window.session
    panel.concept_edit.setText("caption 0 of trial 5")
    panel.lesion_spin.setValue(10.0)
    panel.localize_button.click()
    qtbot.waitUntil(lambda: session.language.concept is not None, timeout=60000)
    result = session.language.concept
    assert result.concept.kind == "covariance" and list(result.rois) and result.lesion.n_voxels == 5
    assert window.cortex_shows.combo.currentData() == "concept"
    expected = session.vertex_values(result.concept.values)
    np.testing.assert_allclose(window.cortex_shows.values(), expected)
    if window.cortex_view is not None:
        np.testing.assert_allclose(window.cortex_view._overlay, expected, rtol=1e-6)
    assert "drops by" in panel.lesion_label.text() and "random lesions" in panel.lesion_label.text()
    panel.select_button.click()
    np.testing.assert_array_equal(session.selection.voxels(), np.sort(result.concept.top_voxels(0.1)))
    # one trial: gradient × input
    panel.map_combo.setCurrentIndex(panel.map_combo.findData("trial"))
    panel.localize_button.click()
    qtbot.waitUntil(lambda: session.language.concept.concept.kind == "gradient×input", timeout=60000)
    assert session.language.concept.concept.trial == session.trial


def test_a_bundle_without_a_retrieval_model_turns_the_panel_off(qtbot, window, app_bundle, retrieval_only_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    panel, tools = window.language_panel, window.session.language
    panel.concept_edit.setText("caption 0 of trial 5")
    panel.localize_button.click()
    qtbot.waitUntil(lambda: tools.concept is not None, timeout=60000)
    open_and_wait(qtbot, window, retrieval_only_bundle.path)
    assert tools.concept is None and tools.search is None and not tools.ready
    assert not panel.tabs.isEnabled() and "names none" in panel.status.text()
    assert window.cortex_shows.combo.currentData() != "concept"


def test_a_cancelled_concept_map_is_not_an_error(qtbot, window, app_bundle, monkeypatch):
    """Cancelling a concept map's captioning (another bundle, closing) showed "Unexpected error (Cancelled)"."""
    from brainview.errors import Cancelled

    open_and_wait(qtbot, window, app_bundle.path)
    panel = window.language_panel
    errors = []
    panel.error.connect(lambda title, text: errors.append((title, text)))

    def cancelled(*args, **kwargs):
        raise Cancelled("the decoder was cancelled")

    monkeypatch.setattr(LanguageTools, "run_concept", cancelled)
    panel.concept_edit.setText("a red car")
    panel.localize_button.click()
    qtbot.waitUntil(lambda: panel.lesion_label.text() == "", timeout=60000)
    qtbot.wait(50)
    assert errors == []
