"""The Qt-free session: loading, navigation events, retrieval ranks, caption scores, synthetic decoding."""

from __future__ import annotations

import numpy as np
import pytest

from brainview.bundle import BundleError
from brainview.state.session import STAGE_LABELS, CaptionScores, Session, finish, load
from tests.conftest import N_TRIALS


def run_steps(steps) -> tuple[list, object]:
    """A progress generator's steps, and its return value."""
    progress = []
    while True:
        try:
            progress.append(next(steps))
        except StopIteration as done:
            return progress, done.value


def _session(bundle, **kwargs) -> Session:
    session = Session()
    session.set_loaded(load(bundle.path, "cpu", **kwargs))
    session.set_predictions(finish(session.iter_predictions()))
    return session


def test_loading_reports_progress_and_ranks_follow_in_steps(retrieval_only_bundle):
    steps = []
    loaded = load(retrieval_only_bundle.path, "cpu", progress=lambda done, total, what: steps.append((done, total, what)))
    assert steps[0] == (0, 2, "opening the bundle") and steps[-1][0] == 2
    assert loaded.device == "none" and "names no captioner" in loaded.notes[0]
    session = Session()
    seen = []
    session.connect("bundle", lambda s: seen.append("bundle"))
    session.connect("scores", lambda s: seen.append("scores"))
    session.set_loaded(loaded)
    assert seen == ["bundle"] and session.stage == "stage2" and not session.can_caption
    assert not session.ranks_ready and session.available_scores() == []
    # the first trial retrieves at once, from tokens predicted while opening
    assert session.retrieve().images.indices[0] == 0
    progress, result = run_steps(session.iter_predictions())
    assert [p.done for p in progress] == sorted(p.done for p in progress) and progress[-1].done == progress[-1].total
    assert {p.what for p in progress} >= {"predicting stage 1", "ranking stage 2"}
    assert seen == ["bundle"]  # the generator reads the session, never changes it
    session.set_predictions(result)
    assert seen == ["bundle", "scores"] and session.ranks_ready
    for stage in session.stages:  # the planted bundle retrieves every true image first
        np.testing.assert_array_equal(session.scores[stage]["image_rank"], np.ones(N_TRIALS))
    assert session.available_scores() == ["image_rank"]


def test_a_broken_bundle_raises_a_user_error(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        load(tmp_path / "missing")


def test_setters_validate_and_notify_only_on_change(retrieval_only_bundle):
    session = _session(retrieval_only_bundle)
    events = []
    for name in ("trial", "stage", "k", "synthetic", "score_name"):
        session.connect(name, lambda s, name=name: events.append(name))
    session.set_trial(3)
    session.set_trial(3)
    session.set_stage("stage1")
    session.set_k(7)
    session.set_synthetic(mode="boost", factor=2.0)
    session.set_score_name("meteor")
    assert events == ["trial", "stage", "k", "synthetic", "score_name"]
    with pytest.raises(IndexError):
        session.set_trial(N_TRIALS)
    with pytest.raises(ValueError):
        session.set_synthetic(mode="explode")
    session.set_k(10_000)
    assert session.k == N_TRIALS


def test_retrieval_marks_the_true_image_and_captions(retrieval_only_bundle):
    session = _session(retrieval_only_bundle)
    session.set_trial(5)
    decoded = session.retrieve()
    assert int(decoded.images.indices[0]) == 5 and decoded.caption is None
    true_rows = set(session.true_texts().tolist())
    assert int(decoded.texts.indices[0]) in true_rows


def test_caption_scores_cover_every_trial_and_stage(app_bundle):
    session = _session(app_bundle)
    session.score_metrics = ("rougeL",)  # METEOR and sentence similarity load WordNet / a model: slow
    progress, result = run_steps(session.iter_caption_scores(batch_size=8))
    # each phase counts its own steps up to its own total: a metric that runs for a minute is never "99 %"
    phases = {}
    for step in progress:
        phases.setdefault(step.what.split(" · ")[0], []).append(step)
    for what, steps in phases.items():
        assert all(a.done <= b.done for a, b in zip(steps, steps[1:])), what
    for stage in session.stages:
        captioning = phases[f"captioning {STAGE_LABELS[stage]}"]
        assert (captioning[0].done, captioning[-1].done, captioning[-1].total) == (0, N_TRIALS, N_TRIALS)
    scoring = [step for step in progress if step.what.startswith("scoring ROUGE")]
    assert [step.done for step in scoring] == list(range(len(session.stages)))  # said before each metric runs
    assert progress[-1].done == progress[-1].total
    streamed = {stage: {} for stage in session.stages}
    for step in progress:
        for stage, new in step.captions.items():
            streamed[stage].update(new)
    assert isinstance(result, CaptionScores)
    assert session.caption("stage2", 0) is None  # the generator never changes the session
    session.set_caption_scores(result)
    for stage in session.stages:
        assert len(result.captions[stage]) == N_TRIALS
        assert [streamed[stage][t] for t in range(N_TRIALS)] == result.captions[stage]
        assert session.caption(stage, N_TRIALS - 1) == result.captions[stage][-1]
        values = session.scores[stage]["rougeL"]
        assert values.shape == (N_TRIALS,) and np.all((values >= 0) & (values <= 1))
    assert session.available_scores() == ["rougeL", "image_rank"]


def test_synthetic_decoding_in_each_mode(app_bundle):
    session = _session(app_bundle)
    voxels = app_bundle.roi_voxels("V1")
    roi = session.decode_synthetic(voxels)
    assert roi.trial is None and roi.decoded.caption and roi.n_voxels == voxels.size
    pattern = session.synthetic_pattern(voxels)
    assert pattern[voxels].min() == session.synthetic.scale and np.count_nonzero(pattern) == voxels.size
    session.set_synthetic(mode="lesion")
    lesioned = session.decode_synthetic(voxels, trial=2)
    assert lesioned.trial == 2
    assert np.all(session.synthetic_pattern(voxels, trial=2)[voxels] == 0)
    values = session.vertex_values(session.pattern())
    assert values.shape == (session.cortex.n_vertices,)


def test_region_modes_decode_the_region_itself(app_bundle):
    """Issue 26: the manifold and preferred-stimuli modes describe the region from the test trials, not
    from the current trial, with the tokens of :mod:`brainview.analysis.roi_methods`."""
    from brainview.analysis.roi_methods import region_tokens

    session = _session(app_bundle)
    voxels = app_bundle.roi_voxels("FFA-1")
    for mode in ("manifold", "data"):
        session.set_synthetic(mode=mode)
        result = session.decode_synthetic(voxels, trial=3)
        assert result.trial is None and result.decoded.caption and result.settings.mode == mode
        np.testing.assert_allclose(session.synthetic_tokens(voxels),
                                   region_tokens(session.decoder, voxels, session.synthetic.stage, mode).tokens)
        pattern = session.synthetic_pattern(voxels)
        assert np.all(pattern[voxels] == 1.0) and np.count_nonzero(pattern) == voxels.size
    data_tokens = session.synthetic_tokens(voxels)
    best = np.argsort(-np.asarray(app_bundle.fmri)[:, voxels].mean(axis=1), kind="stable")[:10]
    np.testing.assert_allclose(data_tokens, np.asarray(app_bundle.image_embeddings)[best].mean(axis=0), rtol=1e-5)


def test_a_newer_selection_stops_a_running_caption_within_a_token(app_bundle):
    session = _session(app_bundle)
    voxels = app_bundle.roi_voxels("V1")

    def decode(newer_after: int | None):
        asked = []

        def superseded():  # the caption's stopping rule asks once per generated token
            asked.append(1)
            return newer_after is not None and len(asked) > newer_after

        steps = session.iter_decode_synthetic(voxels, superseded=superseded)
        retrievals = next(steps)
        return retrievals, finish(steps), len(asked)  # the caption's own steps stream in between

    _, captioned, asked_in_full = decode(None)
    assert captioned.decoded.caption and asked_in_full >= 6  # asked at least once per token of its 6
    retrievals, dropped, asked = decode(newer_after=2)
    assert retrievals.decoded.images.indices.size and dropped is None  # retrievals shown, caption given up
    assert asked <= asked_in_full - 4  # ... at the next token: at least 4 of the 6 tokens never generated
    assert session.model_lock.acquire(blocking=False)  # the next caption need not wait
    session.model_lock.release()
    assert session.decode_synthetic(voxels).decoded.caption == captioned.decoded.caption


def test_decoders_of_the_same_model_files_share_one_loaded_model(app_bundle, tmp_path):
    """The window and the subjects panel (or a bundle opened again) hold the language model once."""
    import gc
    import shutil
    import weakref

    from brainview.bundle import open_bundle
    from brainview.decoding.decoder import Decoder

    copy = tmp_path / "copy"
    shutil.copytree(app_bundle.path, copy)  # other files (other inodes) than the fixture's: a model of its own
    steps = []
    first = Decoder.load(open_bundle(copy), device="cpu")
    again = Decoder.load(open_bundle(copy), device="cpu", progress=lambda *step: steps.append(step))
    assert first.can_caption and again.adapter is first.adapter
    assert steps == [(1, 1, "the language model is already loaded")]  # the progress bar still ends
    fixture = Decoder.load(open_bundle(app_bundle.path), device="cpu")
    assert fixture.adapter is not first.adapter
    tokens = first.tokens_for_trials([0], "stage2")
    assert fixture.captions(tokens) == first.captions(tokens)
    alive = weakref.ref(first.adapter.captioner)
    del first, again
    gc.collect()
    assert alive() is None  # freed once no decoder holds it


def test_a_full_gpu_falls_back_to_the_cpu(retrieval_only_bundle, monkeypatch):
    from brainview.decoding.blip2 import DeviceOutOfMemory
    from brainview.decoding.decoder import Decoder

    asked = []
    real_load = Decoder.load.__func__

    def fake_load(cls, bundle, device="auto", **options):
        asked.append(device)
        if device != "cpu":
            raise DeviceOutOfMemory("cuda", "loading the captioner")
        return real_load(cls, bundle, device, **options)

    monkeypatch.setattr(Decoder, "load", classmethod(fake_load))
    loaded = load(retrieval_only_bundle.path, "cuda")
    assert asked == ["cuda", "cpu"]
    assert "ran out of memory" in loaded.notes[0] and "on the CPU instead" in loaded.notes[0]


def test_the_captioner_loads_only_what_captioning_needs_with_progress_per_shard(app_bundle, tmp_path):
    import shutil

    from brainview.bundle import open_bundle
    from brainview.decoding.blip2 import Blip2Adapter
    from brainview.decoding.decoder import Decoder
    from brainview.state.session import plan_language_models

    shutil.copytree(app_bundle.path, tmp_path / "copy")  # a model no other test holds loaded
    app_bundle = open_bundle(tmp_path / "copy")
    plan = plan_language_models(app_bundle, "cpu")
    assert plan.on_cpu and plan.parameters > 0 and plan.skipped > 0  # vision tower + Q-Former stay on disk
    assert "not loaded" in plan.text() and not plan.ask_first  # a tiny model loads without asking
    steps = []
    decoder = Decoder.load(app_bundle, "cpu", progress=lambda *step: steps.append(step), cpu_precision="float32")
    assert steps == [(1, 1, "loading the language model: shard 1 of 1")]
    captioner = decoder.adapter.captioner
    assert captioner.vision_model is None and captioner.qformer is None
    assert sum(p.numel() for p in captioner.parameters()) == plan.parameters
    full = Decoder(app_bundle, Blip2Adapter.load(app_bundle.resolve_model(app_bundle.vlm["captioner"]), None, "cpu"))
    tokens = decoder.tokens_for_trials([0, 1, 2], "stage1")
    assert decoder.captions(tokens) == full.captions(tokens)  # the same captions as the whole model


def test_a_synthetic_caption_streams_token_by_token(app_bundle):
    """After the retrievals, the caption so far after each token, ending with the caption returned."""
    session = _session(app_bundle)
    session.selection.set_atlas_rois(["V1"])
    steps, final = run_steps(session.iter_decode_synthetic(session.selection.voxels()))
    assert steps[0].decoded.caption is None and steps[0].caption_pending
    streamed = [step.decoded.caption for step in steps[1:]]
    assert streamed and all(step.caption_pending for step in steps[1:])
    assert streamed[-1] == final.decoded.caption and not final.caption_pending
    assert len(set(streamed)) >= 2  # more than one piece of the text reached the caller before the end
