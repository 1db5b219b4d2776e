"""The session's repeat choice: with repeat k chosen, retrieval, ranks and the failure hunt's scores come
from every trial's repeat k (its last valid one where it has fewer), and the mean comes back unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from brainview.decoding.progress import finish
from brainview.decoding.retrieval import image_scores, rank_of
from brainview.state.repeat_choice import iter_repeat_predictions
from brainview.state.repeats import MEAN


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from brainview.state.headless import headless_session
    from tests.conftest import BUNDLE_SHAPE
    from tests.factories import make_bundle, renoise_repeats

    bundle = make_bundle(tmp_path_factory.mktemp("choice") / "b", repeats=3, **BUNDLE_SHAPE)
    renoise_repeats(bundle.path, 3.0)  # single repeats that rank some true images below first
    session = headless_session(str(bundle.path), captions=False)
    session.predict_all()
    return session


def _ranks_from(session, patterns, stage):
    """Each trial's true-image rank when decoded from ``patterns``, one trial at a time."""
    tokens = np.stack([session.decoder.model.predict(p, stage=stage) for p in patterns])
    similarity = image_scores(tokens, session.decoder.unit_targets, unit_targets=True)
    return np.array([rank_of(row, t) for t, row in enumerate(similarity)], dtype=float)


def test_a_chosen_repeat_drives_retrieval_and_ranks(session):
    bundle, stage = session.bundle, session.stage
    mean_ranks = session.score_values("image_rank").copy()
    session.scores[stage]["meteor"] = np.ones(session.n_trials)  # a caption score of the mean's captions
    with pytest.raises(ValueError, match="not predicted"):
        session.repeats.choose(1)
    session.repeats.keep(finish(iter_repeat_predictions(bundle, session.decoder, 1)))
    assert session.repeats.source == 1
    first = np.asarray(bundle.fmri_repeats[:, 0], dtype=np.float32)
    expected = _ranks_from(session, first, stage)
    assert np.array_equal(session.score_values("image_rank"), expected)
    assert not np.array_equal(expected, mean_ranks)  # the noise of one repeat shows
    assert session.score_values("meteor") is None  # the mean's caption scores are not shown beside repeat ranks
    trial = int(np.argmax(expected != mean_ranks))
    decoded = session.retrieve(trial)
    assert rank_of(decoded.image_profile, trial) == expected[trial]
    assert session.repeats.label(trial) == "repeat 1" and session.repeats.fallbacks() == 0
    # back to the mean: the session's own ranks and scores, at once
    session.repeats.choose(MEAN)
    assert np.array_equal(session.score_values("image_rank"), mean_ranks)
    assert session.score_values("meteor") is not None
    assert rank_of(session.retrieve(trial).image_profile, trial) == mean_ranks[trial]


def test_trials_with_fewer_repeats_use_their_last(session):
    bundle, stage = session.bundle, session.stage
    counts = np.asarray(bundle.repeat_counts)
    short = int(np.flatnonzero(counts == 2)[0])
    session.repeats.keep(finish(iter_repeat_predictions(bundle, session.decoder, 3)))
    assert session.repeats.fallbacks() == int(np.sum(counts < 3)) > 0
    assert session.repeats.label(short) == "repeat 2 (its last: it has no repeat 3)"
    own = session.decoder.model.predict(np.asarray(bundle.fmri_repeats[short, 1], dtype=np.float32), stage=stage)
    np.testing.assert_allclose(session.repeats.tokens(short, stage), own, rtol=1e-5, atol=1e-5)
    session.repeats.choose(MEAN)


def test_a_new_bundle_goes_back_to_the_mean_and_drops_late_results(session, app_bundle):
    from brainview.state.session import load

    late = finish(iter_repeat_predictions(session.bundle, session.decoder, 2))
    session.repeats.keep(late)
    assert session.repeats.source == 2
    session.set_loaded(load(str(app_bundle.path), load_language_models=False))
    assert session.repeats.source == MEAN and not session.repeats.has(2)
    session.repeats.keep(late)  # predicted for the bundle before: dropped
    assert session.repeats.source == MEAN
