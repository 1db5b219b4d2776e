"""The subjects panel (issue 16): a study opened in the window, one stimulus in every subject (a subject
that did not see it says so), the ROI table decoded in every subject, the selection and the stimulus
carried over when switching subjects, and the per-subject summary."""

from __future__ import annotations

from PySide6.QtCore import Qt

from brainview.qt.subjects_panel import NOT_SEEN


def _open_study(qtbot, window, study_file):
    with qtbot.waitSignal(window.models_loaded, timeout=60000):
        window.open_path(study_file)
    panel = window.subjects_panel
    qtbot.waitUntil(lambda: panel.current_subject() == "subj01", timeout=10000)
    return panel


def _text(table, row, col):
    item = table.item(row, col)
    return item.text() if item is not None else ""


def test_study_side_by_side(qtbot, window, study_file, recorded_dialogs):
    panel = _open_study(qtbot, window, study_file)
    session = window.session
    assert [panel.subject_combo.itemData(i) for i in range(panel.subject_combo.count())] == ["subj01", "subj02",
                                                                                            "subj05"]
    assert "3 subjects" in panel.title.text()
    # the last stimulus: subj05 did not see it; the others decode it, captions in both stages
    session.set_trial(session.n_trials - 1)
    table = panel.stimulus_table
    qtbot.waitUntil(lambda: bool(_text(table, 0, 3)) and "…" not in _text(table, 0, 3), timeout=30000)
    assert _text(table, 2, 1) == NOT_SEEN
    assert _text(table, 0, 3).startswith("stage 1: ") and "\nstage 2: " in _text(table, 0, 3)
    assert _text(table, 0, 3) == _text(table, 1, 3) and _text(table, 0, 1) == "1 / 12"  # identical copies
    assert "/ 24" in _text(table, 0, 2)  # the text rank among all 24 captions

    # checking an ROI decodes it in every subject
    panel.check_roi("V1")
    qtbot.waitUntil(lambda: all(panel.roi_caption("V1", s) not in ("decoding…",) and "voxels" not in
                                panel.roi_caption("V1", s) for s in ("subj01", "subj02", "subj05")), timeout=30000)
    assert panel.roi_caption("V1", "subj01") == panel.roi_caption("V1", "subj02")
    panel.check_roi("V1", False)
    assert "voxels" in panel.roi_caption("V1", "subj01")

    # the summary: each subject and the mean ± sd
    qtbot.waitUntil(lambda: _text(panel.summary_table, 3, 1) not in ("", "…"), timeout=30000)
    assert "±" in _text(panel.summary_table, 3, 1) and _text(panel.summary_table, 3, 0) == "mean ± sd"
    assert _text(panel.summary_table, 0, 3) == "—"  # METEOR not recorded in these bundles: not invented
    assert recorded_dialogs == []


def test_switching_subjects_carries_the_stimulus_and_the_selection(qtbot, window, study_file, recorded_dialogs):
    panel = _open_study(qtbot, window, study_file)
    session = window.session
    session.set_trial(3)
    session.selection.set_atlas_rois(["V2"])
    session.selection.begin_stroke()
    session.selection.paint([0, 1, 2])
    session.selection.end_stroke()
    before = session.selection.voxels().tolist()
    with qtbot.waitSignal(window.models_loaded, timeout=60000):
        panel.subject_combo.setCurrentIndex(1)
        panel.subject_combo.activated.emit(1)
    qtbot.waitUntil(lambda: panel.current_subject() == "subj02", timeout=10000)
    assert session.bundle.path == study_file.parent / "subj02"
    assert session.trial == 3 and session.selection.atlas_rois == ("V2",)
    # the painted region travels as every vertex under its voxels; same mesh and voxel map: the same voxels
    assert {0, 1, 2} <= set(session.selection.painted_vertices().tolist())
    assert session.selection.voxels().tolist() == before

    # to the subject who missed the last stimulus, from that stimulus
    session.set_trial(session.n_trials - 1)
    messages = []
    panel.message.connect(messages.append)
    with qtbot.waitSignal(window.models_loaded, timeout=60000):
        panel.subject_combo.activated.emit(2)
    qtbot.waitUntil(lambda: panel.current_subject() == "subj05", timeout=10000)
    assert any("subj05 did not see stimulus 11" in m for m in messages)
    assert recorded_dialogs == []


def test_stepping_quickly_through_trials_decodes_only_the_newest(qtbot, window, study_file, recorded_dialogs):
    """Newest wins: a quick run of steps does not queue one decoding of every subject per step."""
    panel = _open_study(qtbot, window, study_file)
    runner, decoding = panel.stimulus_runner, panel.decoding
    qtbot.waitUntil(lambda: not runner.busy, timeout=30000)
    calls = []
    original = decoding.stimulus
    decoding.stimulus = lambda key, captions=True: calls.append((key, captions)) or original(key, captions)
    for trial in range(1, 9):
        window.session.set_trial(trial)
    last = panel.current_key()
    qtbot.waitUntil(lambda: not runner.busy, timeout=60000)
    table = panel.stimulus_table
    qtbot.waitUntil(lambda: "…" not in _text(table, 0, 3) and bool(_text(table, 0, 3)), timeout=30000)
    assert panel.stimulus_box.title() == f"Stimulus {last} in every subject"
    assert calls[-1] == (last, True)
    assert len([c for c in calls if c[1]]) < 8 and len(calls) < 16, calls  # not every step decoded
    assert recorded_dialogs == []


def test_a_broken_study_is_a_dialog(qtbot, window, tmp_path, recorded_dialogs):
    file = tmp_path / "study.json"
    file.write_text('{"format": "brainview-study", "version": 1, "subjects": [{"id": "a", "bundle": "gone"}]}')
    window.subjects_panel.open_study(file)
    qtbot.waitUntil(lambda: bool(recorded_dialogs), timeout=10000)
    assert recorded_dialogs[0][1] == "Cannot open the study" and "does not exist" in recorded_dialogs[0][2]


def test_building_the_demo_study_says_its_step_and_the_time_left(qtbot, window, monkeypatch, recorded_dialogs,
                                                                  tmp_path):
    """The build takes minutes: the panel says the builder's current step and the time left against the
    measured build time, and a failed build is one dialog."""
    import sys

    from brainview.analysis.demo_study import MEASURED_BUILD_SECONDS
    from brainview.decoding.progress import about
    from brainview.qt import subjects_panel

    script = ("import sys, time\n"
              "print('[demo build    41.1 s] subj02 stage2: best epoch 12 of 18', file=sys.stderr, flush=True)\n"
              "time.sleep(1)\nprint('no room left on the device', file=sys.stderr)\nsys.exit(1)\n")
    monkeypatch.setenv("BRAINVIEW_STUDY_CACHE", str(tmp_path))  # never built here: the measured time is said
    monkeypatch.setattr(subjects_panel, "demo_study_builder", lambda demo, out: [sys.executable, "-c", script])
    panel = window.subjects_panel
    assert panel.demo_bundle is not None
    qtbot.mouseClick(panel.demo_button, Qt.LeftButton)
    assert "measured on a 2-core machine" in panel.status.text() and not panel.demo_button.isEnabled()
    left = f"{about(MEASURED_BUILD_SECONDS - 41.1)} left"  # nothing built here yet: the measured time
    qtbot.waitUntil(lambda: left in panel.status.text(), timeout=20000)
    assert panel.status.text() == f"subj02 stage2: best epoch 12 of 18 · {left}"
    qtbot.waitUntil(lambda: bool(recorded_dialogs), timeout=20000)
    assert recorded_dialogs[0][1] == "Cannot build the demo study"
    assert "no room left on the device" in recorded_dialogs[0][2] and panel.demo_button.isEnabled()


def test_the_subjects_table_exports_what_the_panel_shows_and_what_the_cli_writes(qtbot, window, study_file,
                                                                                tmp_path, monkeypatch,
                                                                                recorded_dialogs):
    import numpy as np
    import pandas as pd

    from brainview.cli import main

    panel, exports = window.subjects_panel, window.exports
    # no study: the button and the menu action are off and say why
    assert not panel.export_button.isEnabled() and "No study is open" in panel.export_button.toolTip()
    assert not exports.subjects_action.isEnabled() and "No study is open" in exports.subjects_action.toolTip()
    panel = _open_study(qtbot, window, study_file)
    qtbot.waitUntil(panel.export_button.isEnabled, timeout=30000)
    assert exports.subjects_action.isEnabled() and exports.subjects_action in panel.summary_table.actions()
    asked = []
    monkeypatch.setattr("brainview.qt.exports.choose_csv",
                        lambda parent, title, name: asked.append(name) or str(tmp_path / "window.csv"))
    qtbot.mouseClick(panel.export_button, Qt.LeftButton)
    assert asked == ["three-subjects.csv"]
    frame = pd.read_csv(tmp_path / "window.csv")

    # number for number what the panel shows: each subject, the mean ± sd, each pool's chance level
    table = panel.summary_table
    figures = ("image_given_brain", "text_given_brain", "meteor")
    for row, subject in enumerate(("subj01", "subj02", "subj05")):
        assert frame["subject"][row] == _text(table, row, 0) == subject
        for col, key in enumerate(figures, start=1):
            value = frame[key][row]
            assert _text(table, row, col) == ("—" if np.isnan(value) else f"{value:.3f}")
        assert f"{frame['pool'][row]:g}-way" in table.item(row, 0).toolTip()
    mean, sd = (frame.index[frame["subject"] == name][0] for name in ("mean", "sd"))
    assert _text(table, 3, 1) == f"{frame['image_given_brain'][mean]:.3f} ± {frame['image_given_brain'][sd]:.3f}"
    assert _text(table, 3, 3) == "—" and frame["meteor"].isna().all()
    for chance in frame["chance"][:3]:
        assert f"{chance:.4f}" in panel.summary_box.title()

    # and byte for byte what the command line writes for the same study
    assert main(["table", str(study_file), "--out", str(tmp_path / "cli.csv"), "--device", "cpu"]) == 0
    assert (tmp_path / "cli.csv").read_text() == (tmp_path / "window.csv").read_text()
    assert recorded_dialogs == []
