"""A seeded fuzz of session files: a few hundred hostile or careless edits of a good session, each
either refused with one dialog and nothing changed, or restored whole; and the window still opens
the good session afterwards (a bad value must never be stored where it breaks later changes)."""

from __future__ import annotations

import copy
import json
import math
import random

import pytest

from tests.factories import json_paths
from tests.qt.conftest import open_and_wait

N_MUTATIONS = 300
HOSTILE = ["abc", "nope", "", -5, -1, 0, 1, 2.5, math.nan, math.inf, -math.inf, 1e308, 2**63, -(2**63), 2**31,
           True, False, None, [], {}, [{}, {}], [1, 2], ["x"], {"a": 1}, "x" * 5000, [2**63], [-1], [1.5], ["1"],
           [math.nan, 0, 0]]




def mutate(document: dict, rng: random.Random) -> dict:
    """The document with one to three values replaced by hostile ones, deleted, or given a neighbour."""
    document = copy.deepcopy(document)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p, _ in json_paths(document, 5) if p and p[0] not in ("format", "version")]
        path = rng.choice(paths)
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        action = rng.random()
        if action < 0.15 and isinstance(parent, dict):
            del parent[path[-1]]
        elif action < 0.2 and isinstance(parent, dict):
            parent["unknown_" + str(path[-1])] = rng.choice(HOSTILE)
        else:
            parent[path[-1]] = rng.choice(HOSTILE)
    return document


@pytest.mark.timeout(240)
@pytest.mark.filterwarnings("error::RuntimeWarning")  # a restored value must not make the colouring divide by zero
def test_session_fuzz_one_dialog_or_a_whole_restore(qtbot, window, retrieval_only_bundle, tmp_path,
                                                    recorded_dialogs):
    open_and_wait(qtbot, window, retrieval_only_bundle.path)
    io = window.session_io
    window.session.set_trial(3)
    window.session.selection.paint([1, 2, 3])
    window.cortex_view.set_brush_radius(6.0)
    good_path = io.save(tmp_path / "good.json")
    good = json.loads(good_path.read_text())
    good_state = io.capture()
    io.locate_bundle = lambda problem: None  # a session naming another bundle: the user cancels
    rng = random.Random(25)
    outcomes = {"refused": 0, "restored": 0}
    for i in range(N_MUTATIONS):
        bad = mutate(good, rng)
        path = tmp_path / f"m{i}.json"
        path.write_text(json.dumps(bad))
        before = io.capture()
        recorded_dialogs.clear()
        opened = io.open(path)  # no exception may escape
        if not opened or recorded_dialogs:
            assert len(recorded_dialogs) <= 1, recorded_dialogs  # one dialog (none: the user cancelled)
            after = io.capture()
            for key in ("trial", "stage", "k", "selection", "synthetic", "cortex", "overlay"):
                assert after[key] == before[key], (i, key, bad)
            outcomes["refused"] += 1
        else:
            outcomes["restored"] += 1
        # whatever was opened, the window keeps working: a change of trial, and saving, still succeed
        window.session.set_trial((i % 5) + 1)
        window.cortex_view.update_overlay_style(threshold=0.1)
        recorded_dialogs.clear()
        assert io.open(good_path) and not recorded_dialogs
        restored = io.capture()
        for key in ("trial", "stage", "k", "selection", "synthetic", "cortex", "overlay"):
            assert restored[key] == good_state[key], (i, key, bad)
    print(f"fuzz outcomes: {outcomes}")  # shown with -s
    assert outcomes["refused"] > N_MUTATIONS // 2 and outcomes["restored"] > 0, outcomes


@pytest.mark.parametrize("section,field,value", [
    ("overlay", "threshold", "abc"), ("cortex", "brush_radius", -5), ("cortex", "brush_radius", math.nan),
    ("cortex", "brush_radius", 1e308), ("synthetic", "scale", math.nan), ("cortex", "camera", [{}, {}]),
    ("cortex", "camera", [{"position": [math.nan, 0, 0], "focal_point": [0, 0, 0], "view_up": [0, 0, 1]}]),
    ("cortex", "view", "nope"), ("selection", "painted_voxels", [2**63 - 1]), ("selection", "rois", ["NoSuch"]),
])
def test_the_issue_s_bad_values_are_refused_whole(qtbot, window, retrieval_only_bundle, tmp_path, recorded_dialogs,
                                                  section, field, value):
    open_and_wait(qtbot, window, retrieval_only_bundle.path)
    io = window.session_io
    good_path = io.save(tmp_path / "good.json")
    document = json.loads(good_path.read_text())
    document["trial"] = window.session.bundle.trials[4]["id"]
    document[section][field] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    assert not io.open(bad)
    assert len(recorded_dialogs) == 1
    assert field in recorded_dialogs[0][2] or "ROI" in recorded_dialogs[0][2], recorded_dialogs
    assert window.session.trial == 0  # nothing of the bad session was applied
    window.session.set_trial(2)  # the window keeps working
    assert io.capture()["overlay"]["threshold"] != "abc"


@pytest.mark.parametrize("setter,value", [
    ("update_overlay_style", {"threshold": "abc"}), ("update_overlay_style", {"vmax": math.inf}),
    ("set_brush_radius", -5), ("set_brush_radius", math.nan), ("set_brush_radius", 1e308),
    ("set_camera_state", [{}, {}]),
])
def test_widget_setters_validate_before_they_store(qtbot, window, retrieval_only_bundle, setter, value):
    from brainview.bundle.schema import SchemaError

    open_and_wait(qtbot, window, retrieval_only_bundle.path)
    view = window.cortex_view
    style, radius = dict(view.overlay_style), view.brush_radius
    with pytest.raises(SchemaError):
        getattr(view, setter)(**value) if isinstance(value, dict) else getattr(view, setter)(value)
    assert view.overlay_style == style and view.brush_radius == radius
    with pytest.raises(SchemaError):
        window.session.set_synthetic(scale=math.nan)
    view.update_overlay_style(threshold=0.3)  # the view still takes good values
