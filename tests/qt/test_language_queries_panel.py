"""The language panel warns about words the text encoder never saw, and maps a zero-shot label against the others."""

from __future__ import annotations

from tests.qt.conftest import open_and_wait


def test_unknown_words_are_flagged_in_each_tab(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    panel, tools = window.language_panel, window.session.language
    with qtbot.waitSignal(panel.search_done, timeout=60000):
        panel.search_edit.setText("a photo of trial 3")
    qtbot.waitUntil(lambda: tools.search is not None, timeout=30000)
    assert tools.search.unknown == {"photo": tuple("photo")}
    assert "⚠" in panel.search_summary.text() and "'photo'" in panel.search_summary.text()
    with qtbot.waitSignal(panel.search_done, timeout=60000):
        panel.search_edit.setText("caption 1 of trial 3")
    qtbot.waitUntil(lambda: tools.search.phrase == "caption 1 of trial 3", timeout=30000)
    assert "⚠" not in panel.search_summary.text()

    panel.labels_edit.setText("0=caption 0, 1=a place")
    panel.classify_button.click()
    qtbot.waitUntil(lambda: tools.zero_shot is not None, timeout=60000)
    assert "label 1:" in panel.accuracy_label.text() and "'place'" in panel.accuracy_label.text()


def test_a_zero_shot_label_is_mapped_against_the_others(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    panel, tools = window.language_panel, window.session.language
    assert not panel.label_combo.isEnabled()
    panel.labels_edit.setText("zero=caption 0;trial 0, 1, 2")
    panel.classify_button.click()
    qtbot.waitUntil(lambda: tools.zero_shot is not None, timeout=60000)
    assert panel.label_combo.isEnabled() and panel.label_combo.count() == 4
    panel.label_combo.setCurrentIndex(panel.label_combo.findData("zero"))
    panel.label_combo.activated.emit(panel.label_combo.currentIndex())
    assert panel.concept_edit.text() == "zero=caption 0;trial 0"
    assert panel.versus_edit.text() == "1=a photo of a 1, 2=a photo of a 2"
    panel.localize_button.click()
    qtbot.waitUntil(lambda: tools.concept is not None, timeout=60000)
    concept = tools.concept.concept
    assert concept.phrase == "zero" and concept.versus == ("1", "2") and concept.queries[0].prompts == ("caption 0",
                                                                                                       "trial 0")
    assert tools.concept.lesion.measure == "log-odds" and "against 1, 2" in panel.lesion_label.text()


def test_labels_from_a_field_take_their_prompts_from_a_finer_field(qtbot, window, tmp_path):
    from tests.factories import make_concept_bundle

    bundle = make_concept_bundle(tmp_path / "concepts")  # scene.parity does not refine scene.category: no choice
    open_and_wait(qtbot, window, bundle.path)
    panel = window.language_panel
    panel.truth_combo.setCurrentIndex(panel.truth_combo.findData("scene.category"))
    assert [panel.prompts_combo.itemData(i) for i in range(panel.prompts_combo.count())] == [None]
    panel.labels_from_field()
    assert panel.labels_edit.text() == "A, B, C"
