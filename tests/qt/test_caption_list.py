"""The retrieved-caption lists (issue 22, item 8): each row names the test trial its caption belongs to and
marks the trial's own references; Ctrl+C and the context menu's Copy put the selected rows on the clipboard."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.qt.conftest import open_and_wait


def _expected(bundle, texts, true_trial):
    """Each retrieved caption's line, read straight from the bundle's text index."""
    lines = []
    for index, score in zip(texts.indices, texts.scores):
        trial, caption = (int(v) for v in bundle.text_index[int(index)])
        lines.append((f"{score:.3f}  trial {bundle.trials[trial]['id']}  {bundle.captions[trial][caption]}"
                      + ("  ✓ true caption" if trial == true_trial else ""), trial, float(score)))
    return lines


def test_retrieved_captions_show_their_trial_and_copy_with_ctrl_c(qtbot, window, app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    session, view = window.session, window.trial_view
    session.set_trial(2)
    captions = view.trial_texts
    expected = _expected(session.bundle, session.retrieve(stage="stage2").texts, 2)
    assert [captions.item(i).text() for i in range(captions.count())] == [line for line, _, _ in expected]
    true_rows = [i for i, (_, trial, _) in enumerate(expected) if trial == 2]
    other_rows = [i for i, (_, trial, _) in enumerate(expected) if trial != 2]
    assert true_rows and other_rows  # the test bundle retrieves trial 2's references and others'
    assert "trial t0002" in captions.item(true_rows[0]).toolTip()

    # Ctrl+C on two selected rows: both lines, in list order, the true one marked
    picked = sorted([true_rows[0], other_rows[0]])
    captions.setFocus()
    for row in picked:
        captions.item(row).setSelected(True)
    QApplication.clipboard().clear()
    qtbot.keyClick(captions, Qt.Key_C, Qt.ControlModifier)
    copied = QApplication.clipboard().text().splitlines()
    assert copied == [expected[row][0] for row in picked]
    assert sum("✓ true caption" in line for line in copied) == 1

    # the context menu: "Copy" the same, "Copy with trial ids" tab-separated under a header
    menu = {action.text(): action for action in captions.actions()}
    assert window.exports.retrieval_action in captions.actions()  # the CSV export stays in the menu
    QApplication.clipboard().clear()
    menu["Copy"].trigger()
    assert QApplication.clipboard().text().splitlines() == [expected[row][0] for row in picked]
    menu["Copy with trial ids"].trigger()
    table = [line.split("\t") for line in QApplication.clipboard().text().splitlines()]
    assert table[0] == ["rank", "trial", "score", "caption", "true"]
    for cells, row in zip(table[1:], picked):
        _, trial, score = expected[row]
        assert cells[:3] == [str(row + 1), session.bundle.trials[trial]["id"], f"{score:.4f}"]
        assert cells[4] == ("true" if trial == 2 else "")


def test_the_synthetic_list_marks_nothing_true_without_a_trial_and_copies_nothing_unselected(qtbot, window,
                                                                                             app_bundle):
    open_and_wait(qtbot, window, app_bundle.path)
    view = window.trial_view
    assert view.synthetic_texts.item(0).text() == "no selection"
    view.synthetic_texts.setFocus()
    QApplication.clipboard().setText("before")
    qtbot.keyClick(view.synthetic_texts, Qt.Key_C, Qt.ControlModifier)
    assert QApplication.clipboard().text() == "before"  # a message row is not a caption to copy
    window.roi_panel.set_checked(["FFA-1"])
    qtbot.waitUntil(lambda: view.synthetic is not None, timeout=30000)
    texts = view.synthetic_texts
    expected = _expected(window.session.bundle, view.synthetic.decoded.texts, view.synthetic.trial)
    assert [texts.item(i).text() for i in range(texts.count())] == [line for line, _, _ in expected]
    texts.selectAll()
    qtbot.keyClick(texts, Qt.Key_C, Qt.ControlModifier)
    assert QApplication.clipboard().text().splitlines() == [line for line, _, _ in expected]
