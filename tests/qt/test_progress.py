"""Progress in the status bar: the running phase's own count and an estimate, never a long wait at 99 %."""

from __future__ import annotations

import re

from tests.qt.conftest import open_and_wait


def test_scoring_every_trial_shows_each_phase_with_its_own_count(qtbot, window, app_bundle, monkeypatch):
    open_and_wait(qtbot, window, app_bundle.path)
    shown = []
    real = window.passes.show_progress
    monkeypatch.setattr(window.passes, "show_progress",
                        lambda done, total, what: (real(done, total, what), shown.append(window.progress.format())))
    window.passes.score_all()
    qtbot.waitUntil(lambda: "rougeL" in window.session.scores.get("stage2", {}), timeout=60000)
    assert shown and all(re.search(r": \d+ of \d+", text) and "%" not in text for text in shown), shown
    assert any(text.startswith("captioning stage") for text in shown)
    scoring = [text for text in shown if text.startswith("scoring ROUGE-L")]
    assert scoring and scoring[0].split(": ")[1].startswith("0 of")  # said before the metric runs


def test_the_estimate_follows_the_pace_of_the_phase(window, monkeypatch):
    from brainview.qt import dataset_passes

    clock = iter([100.0, 110.0])
    monkeypatch.setattr(dataset_passes.time, "monotonic", lambda: next(clock))
    window.passes.show_progress(0, 300, "captioning stage 2")
    window.passes.show_progress(100, 300, "captioning stage 2")
    assert window.progress.format() == "captioning stage 2: 100 of 300 · about 20 s left"
    assert window.progress.isVisible()
