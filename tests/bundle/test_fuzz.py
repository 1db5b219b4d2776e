"""Seeded fuzzing of a small bundle (360 mutations, every kind at least once): every damaged copy is
refused with one line (exit 2) and bounded memory; a copy that is still valid is accepted and
evaluates (see ``tests/bundle/fuzz.py``)."""

from __future__ import annotations

import pytest

from tests.bundle import fuzz


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    from tests.factories import make_bundle

    root = tmp_path_factory.mktemp("fuzz")
    bundle = make_bundle(root / "small", n_trials=12, n_voxels=48, subdivisions=1).path
    return fuzz.run(bundle, root, n=360, seed=0)  # every one of the 357 kinds at least once


def test_every_damaged_bundle_is_refused_with_one_line_and_bounded_memory(outcomes):
    bad = [o for o in outcomes if o.verdict not in ("accepted", "refused")]
    assert not bad, "\n".join(f"{o.verdict}: {o.mutation}: {o.detail[:200]}" for o in bad)
    assert max(o.peak for o in outcomes) < fuzz.MEMORY_LIMIT


def test_the_mutations_cover_every_kind_and_most_must_be_refused(outcomes):
    counts = fuzz.summary(outcomes)
    assert sum(counts.values()) == 360
    assert sum(o.must_refuse for o in outcomes) > 300
    assert counts["refused cleanly"] > 300
    # each refusal names a file of the bundle (or the bundle itself)
    refused = [o for o in outcomes if o.verdict == "refused"]
    assert all(o.detail.startswith("brainview: error: ") for o in refused)
