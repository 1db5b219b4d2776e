"""The demo study's build, as the app offers it: the builder is found in a source checkout, and the time
the app states comes from a measurement (this machine's last build, else the figure measured on 2 cores)."""

from __future__ import annotations

import json

from brainview.analysis.demo_study import (MEASURED_BUILD_SECONDS, build_estimate, build_status, demo_study_builder,
                                           expected_build_seconds)
from brainview.paths import demo_bundle_path, source_root


def test_the_builder_is_found_in_the_source_checkout(tmp_path):
    """The "Demo study" button runs ``python -m training.demo_world study`` from the checkout's root."""
    command = demo_study_builder(demo_bundle_path(), tmp_path)
    assert command is not None and command[1:4] == ["-m", "training.demo_world", "study"]
    assert (source_root() / "training" / "demo_world" / "study.py").is_file()
    assert command[-1] == str(tmp_path)


def test_the_stated_time_is_the_last_build_here_else_the_measured_one(tmp_path):
    assert expected_build_seconds(tmp_path) == (MEASURED_BUILD_SECONDS, False)
    assert "measured on a 2-core machine" in build_estimate(tmp_path)
    (tmp_path / "study.json").write_text(json.dumps({"format": "brainview-study", "build_seconds": 250.4}))
    assert expected_build_seconds(tmp_path) == (250.4, True)
    assert build_estimate(tmp_path) == "about 4 min, as the last build here"
    for broken in ("{", json.dumps([1]), json.dumps({"build_seconds": "soon"}), json.dumps({"build_seconds": -3})):
        (tmp_path / "study.json").write_text(broken)
        assert expected_build_seconds(tmp_path) == (MEASURED_BUILD_SECONDS, False)


def test_a_progress_line_says_the_step_and_the_time_left():
    assert build_status("[demo build    41.1 s] subj02 stage2: best epoch 12 of 18", 300.0) == \
        "subj02 stage2: best epoch 12 of 18 · about 4 min left"
    assert build_status("[demo build   295.0 s] study: done", 300.0).endswith("· almost done")
    assert build_status("[demo build   400.0 s] subj04 evaluate: {}", 300.0).endswith("· almost done")
    assert build_status("some other line", 300.0) == "some other line"
