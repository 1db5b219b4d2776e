"""The state the app shows, without Qt: the bundle, its decoder, the current trial and stage, k,
the synthetic-pattern settings, and the per-trial table used to hunt decoding failures.

Widgets read from a :class:`Session` and change it through its setters; every change is
announced through plain callbacks (:meth:`Session.connect`), so the same object drives the GUI
and can be scripted or tested without a display. Long work (opening a bundle, loading the
language models, captioning every test trial) is exposed as plain functions and generators
that report progress, so the GUI can run them in a worker thread and hand the result back
with a setter on the GUI thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np

from brainview.analysis.roi_methods import REGION_MODES, region_tokens
from brainview.bundle import Bundle
from brainview.cortex.selection import RoiSelection
from brainview.cortex.surface import Cortex
from brainview.decoding.decoder import Decoded, Decoder
from brainview.decoding.metrics import caption_metrics
from brainview.decoding.prediction_cache import Predictions, iter_predictions, iter_sum_rois, ranks
from brainview.decoding.progress import finish, relayed
from brainview.decoding.questions import Turn
from brainview.decoding.retrieval import image_scores
from brainview.decoding.synthetic import DEFAULT_BOOST, MODES, TRIAL_MODES, boost, lesion, roi_indicator
from brainview.events import Observable
from brainview.state.language import LanguageTools
from brainview.state.model_access import ModelAccess, captions_in_background
from brainview.bundle.schema import Integer
from brainview.state.other_models import MODEL_SCORE, OtherModels
from brainview.state.repeat_choice import RepeatChoice
from brainview.state.session_file import SYNTHETIC
from brainview.state.streaming import first_text, iter_answers, iter_foreground_text, iter_trial_captions, never

# opening and loading, re-exported: the window, the command line and scripts import them from here
from brainview.state.loading import (  # noqa: F401
    MODELS_NOT_LOADED,
    Loaded,
    ModelPlan,
    device_name,
    load,
    load_decoder,
    open_for_browsing,
    plan_language_models,
)

#: per-trial caption scores shown in the trial table, in column order (names of ``caption_metrics``)
CAPTION_SCORES = ("meteor", "rougeL", "sentence")
#: every score a column can sort by; ranks are "higher is worse", caption metrics "lower is worse"
SCORE_LABELS = {"meteor": "METEOR", "rougeL": "ROUGE-L", "sentence": "sentence sim", "image_rank": "image rank"}
STAGE_LABELS = {"stage1": "stage 1", "stage2": "stage 2"}
DEVICES = ("auto", "cpu", "cuda")
EVENTS = ("bundle", "decoder", "notes", "trial", "stage", "k", "synthetic", "scores", "captions", "score_name")

def higher_is_better(score: str) -> bool:
    return score != "image_rank"


@dataclass
class SyntheticSettings:
    """How a selection becomes a synthetic pattern (DESIGN.md §4): the paper's ROI-only pattern,
    or a lesion / boost of the current trial's pattern."""

    mode: str = "roi"
    scale: float = 11.0
    factor: float = DEFAULT_BOOST
    stage: str = "stage2"


@dataclass
class SyntheticResult:
    """A decoded synthetic pattern, with what produced it so the GUI can label it."""

    decoded: Decoded
    settings: SyntheticSettings
    n_voxels: int
    trial: int | None  # the trial lesioned or boosted; None in the other modes
    caption_pending: bool = False  # retrievals are in, the caption is being generated
    generation: int = 0  # Session.generation it was made for: a result for another bundle is dropped


@dataclass
class ScoringProgress:
    """A step of :meth:`Session.iter_caption_scores`, with the captions made since the last step."""

    done: int
    total: int
    what: str
    captions: dict[str, dict[int, str]] = field(default_factory=dict)  # stage -> trial -> caption


@dataclass
class CaptionScores:
    """Captions of every test trial per stage and their per-trial metrics (computed in a worker)."""

    captions: dict[str, list[str]]  # stage -> caption per trial
    scores: dict[str, dict[str, np.ndarray]]  # stage -> metric -> value per trial
    missing: dict[str, str]  # metric -> why it is absent


class Session(Observable):
    """What the app shows. Setters validate, update and then notify the connected callbacks."""

    EVENTS = EVENTS
    KIND = "session"

    def __init__(self):
        super().__init__()
        self.bundle: Bundle | None = None
        self.decoder: Decoder | None = None
        self.cortex: Cortex | None = None
        self.selection: RoiSelection | None = None  # atlas ROIs + painted voxels, the live-decoding input
        self.device = "auto"
        self.loaded_device = "none"
        self.trial = 0
        self.stage = "stage2"
        self.k = 5
        self.score_name = "image_rank"  # the score the failure hunt sorts by and the histogram shows
        self.score_metrics: tuple[str, ...] = CAPTION_SCORES  # caption metrics computed per trial
        self.synthetic = SyntheticSettings()
        self.notes: list[str] = []
        self.bundle_notes: list[str] = []  # about the bundle itself (a stale prediction cache): kept before any other
        self.captions: dict[str, dict[int, str]] = {}  # stage -> trial -> caption, filled as they come
        self.scores: dict[str, dict[str, np.ndarray]] = {}  # stage -> score -> per-trial values
        self.missing_scores: dict[str, str] = {}
        self._similarity: dict[str, np.ndarray] = {}  # stage -> (n_trials, n_trials) brain x image cosine
        # one language model, several workers: one call at a time, what the user looks at first
        self.model_lock = ModelAccess()
        self.generation = 0  # counts the bundles shown; results computed for an older one are dropped
        self.language = LanguageTools(self)  # phrase search, zero-shot labels, concept maps
        self.other_models = OtherModels(self)  # other models' captions of the test trials
        self.repeats = RepeatChoice(self)  # decode the mean of each trial's repeats, or one repeat

    # ------------------------------------------------------------------ bundle

    @property
    def has_bundle(self) -> bool:
        return self.bundle is not None

    @property
    def n_trials(self) -> int:
        return self.bundle.n_trials if self.bundle is not None else 0

    @property
    def stages(self) -> list[str]:
        return self.bundle.stages if self.bundle is not None else []

    def set_loaded(self, loaded: Loaded) -> None:
        """Show a newly loaded bundle at once; every trial's rank follows (:meth:`iter_predictions`,
        :meth:`set_predictions`), captions later."""
        self.generation += 1
        self.bundle, self.decoder, self.cortex = loaded.bundle, loaded.decoder, loaded.cortex
        self.selection = RoiSelection(self.cortex)
        self.loaded_device = loaded.device
        self.bundle_notes = [loaded.cache.note] if loaded.cache.note else []
        self.notes = self.bundle_notes + list(loaded.notes)
        self.trial = 0
        self.stage = "stage2" if "stage2" in self.bundle.stages else self.bundle.stages[0]
        self.synthetic = SyntheticSettings(scale=self.bundle.synthetic_scale, stage=self.stage)
        self.captions = {s: {} for s in self.bundle.stages}
        self.missing_scores = {}
        self.score_name = "image_rank"
        self._similarity = dict(loaded.similarity)  # what an earlier pass predicted (a restored bundle)
        self.scores = {s: {"image_rank": ranks(self._similarity[s])} if s in self._similarity else {}
                       for s in self.bundle.stages}
        self._emit("bundle")

    def set_decoder(self, decoder: Decoder, device: str, notes: list[str] | None = None) -> None:
        """Swap the language models (another device); captions and predictions already made stay valid."""
        decoder.share_predictions(self.decoder)
        self.decoder = decoder
        self.loaded_device = device
        self.notes = self.bundle_notes + list(notes or [])
        self._emit("decoder")

    def set_notes(self, notes: list[str]) -> None:
        """Messages for the user about the models (why captions are off, a CPU fallback), after those
        about the bundle."""
        self.notes = self.bundle_notes + list(notes)
        self._emit("notes")

    @property
    def can_caption(self) -> bool:
        return self.decoder is not None and self.decoder.can_caption

    @property
    def captions_missing(self) -> str | None:
        return None if self.decoder is None else self.decoder.captions_missing

    # ------------------------------------------------------------------ navigation

    def set_trial(self, trial: int) -> None:
        trial = int(trial)
        if not 0 <= trial < self.n_trials:
            raise IndexError(f"trial {trial} is outside 0..{self.n_trials - 1}")
        if trial != self.trial:
            self.trial = trial
            self._emit("trial")

    def set_stage(self, stage: str) -> None:
        if stage not in self.stages:
            raise ValueError(f"this bundle has no {stage}; it has {', '.join(self.stages)}")
        if stage != self.stage:
            self.stage = stage
            self._emit("stage")

    def set_k(self, k: int) -> None:
        Integer(1, 2**31 - 1).check(k, "k")
        k = max(1, min(int(k), max(self.n_trials, 1)))
        if k != self.k:
            self.k = k
            self._emit("k")

    def set_score_name(self, name: str) -> None:
        if name not in SCORE_LABELS and name not in self.other_models.score_keys():
            raise ValueError(f"unknown score {name!r}; choose from {list(SCORE_LABELS) + self.other_models.score_keys()}")
        if name != self.score_name:
            self.score_name = name
            self._emit("score_name")

    def set_synthetic(self, **changes) -> None:
        """Change the synthetic settings (``mode``, ``scale``, ``factor``, ``stage``)."""
        if "mode" in changes and changes["mode"] not in (*MODES, *REGION_MODES):
            raise ValueError(f"unknown mode {changes['mode']!r}; choose one of {(*MODES, *REGION_MODES)}")
        unknown = set(changes) - set(SYNTHETIC)
        if unknown:
            raise TypeError(f"unknown synthetic settings {sorted(unknown)}")
        for key, value in changes.items():  # all checked before the settings change
            SYNTHETIC[key].check(value, f"synthetic {key}")
        if "stage" in changes and changes["stage"] not in self.stages:
            raise ValueError(f"this bundle has no {changes['stage']}")
        updated = SyntheticSettings(**{**self.synthetic.__dict__, **changes})
        if updated != self.synthetic:
            self.synthetic = updated
            self._emit("synthetic")

    # ------------------------------------------------------------------ trial data

    def trial_id(self, trial: int | None = None) -> str:
        return self.bundle.trials[self.trial if trial is None else trial]["id"]

    def references(self, trial: int | None = None) -> list[str]:
        return list(self.bundle.captions[self.trial if trial is None else trial])

    def stimulus(self, trial: int | None = None) -> np.ndarray:
        return np.asarray(self.bundle.stimuli[self.trial if trial is None else trial])

    def pattern(self, trial: int | None = None) -> np.ndarray:
        """The trial's fMRI pattern (n_voxels,), float32."""
        return np.asarray(self.bundle.fmri[self.trial if trial is None else trial], dtype=np.float32)

    def caption(self, stage: str, trial: int | None = None) -> str | None:
        trial = self.trial if trial is None else trial
        if self.repeats.repeat is not None:
            return self.repeats.caption(stage, trial)
        return self.captions.get(stage, {}).get(trial)

    def shown_stages(self) -> list[str]:
        """The stages the trial view retrieves from: the chosen one, and stage 2 for its captions."""
        return list(dict.fromkeys([self.stage] + (["stage2"] if "stage2" in self.stages else [])))

    def trial_ready(self, trial: int | None = None) -> bool:
        """Whether retrieving the trial is instant; if not, the decoder's ``predict_trial`` in a
        worker first (a second at NSD size before every trial is predicted: never on the GUI thread)."""
        trial = self.trial if trial is None else trial
        return self.repeats.repeat is not None or all(self.decoder.has_tokens(trial, stage)
                                                      for stage in self.shown_stages())

    def retrieve(self, trial: int | None = None, stage: str | None = None, k: int | None = None) -> Decoded:
        """Top-k images and captions of a trial's brain pattern (instant: no caption generated)."""
        trial = self.trial if trial is None else trial
        stage = stage or self.stage
        tokens = self.repeats.tokens(trial, stage)
        return self.decoder.decode(tokens, stage, k or self.k, caption=False)

    def true_texts(self, trial: int | None = None) -> np.ndarray:
        """Indices into the text embeddings that are this trial's own reference captions."""
        trial = self.trial if trial is None else trial
        return np.flatnonzero(self.bundle.text_index[:, 0] == trial)

    def caption_trial(self, trial: int | None = None) -> dict[str, dict[int, str]]:
        """Caption one trial on each stage (slow: the language model runs), for :meth:`store_captions`."""
        return finish(self.iter_caption_trial(self.trial if trial is None else trial))

    def iter_caption_trial(self, trial: int, superseded: Callable[[], bool] = never):
        """:meth:`caption_trial` streamed for a worker: yields a :class:`~brainview.state.streaming.CaptionSoFar`
        after each token (one stage after the other), returns the captions, or None once ``superseded()``."""
        return (yield from iter_trial_captions(self, trial, superseded))

    def store_captions(self, captions: dict[str, dict[int, str]]) -> None:
        """Keep captions (stage -> trial -> caption) made in a worker, on the GUI thread, and tell the views."""
        for stage, by_trial in captions.items():
            self.captions.setdefault(stage, {}).update(by_trial)
        self._emit("captions")

    # ------------------------------------------------------------------ scores

    @property
    def ranks_ready(self) -> bool:
        """Whether every trial's image rank is known (:meth:`set_predictions` has run)."""
        return self.has_bundle and all(s in self._similarity for s in self.stages)

    def iter_predictions(self) -> Iterator[ScoringProgress]:
        """Every test trial's tokens on every stage (the bundle's verified prediction cache, else one
        pass over each stage's weights, on the GPU when the model is there), then their image
        similarities: long work for a worker.

        Yields :class:`ScoringProgress`; returns :class:`Predictions` for :meth:`set_predictions` on
        the GUI thread. Reads the session, never changes it.
        """
        return (yield from relayed(iter_predictions(self.decoder), ScoringProgress))

    def iter_sum_rois(self) -> Iterator[ScoringProgress]:
        """The atlas ROIs' weight sums where opening from a prediction cache skipped the pass that brings
        them (checking an ROI then decodes it at once): a worker's job after the ranks."""
        for done, total, what in iter_sum_rois(self.decoder):
            yield ScoringProgress(done, total, what)

    def predict_all(self) -> None:
        """Every trial's tokens and image ranks now, on the caller's thread: for headless use (tables,
        figures, the command line), where no worker fills them in behind the first trial."""
        if not self.ranks_ready:
            self.set_predictions(finish(self.iter_predictions()))

    def set_predictions(self, result: Predictions) -> None:
        """Keep every trial's tokens and image ranks (from :meth:`iter_predictions`) and tell the views."""
        if result.bundle is not self.bundle:
            return  # predicted for a bundle that has since been replaced
        for stage, tokens in result.tokens.items():
            self.decoder.keep_tokens(stage, tokens)
            self._similarity[stage] = result.similarity[stage]
            self.scores.setdefault(stage, {})["image_rank"] = ranks(result.similarity[stage])
        self._emit("scores")

    def similarity(self, stage: str) -> np.ndarray:
        """Brain × image cosine similarity of every test trial to every test image, cached per stage
        (computed here, on the caller's thread, if :meth:`set_predictions` has not run yet)."""
        if stage not in self._similarity:
            tokens = self.decoder.tokens_for_trials(np.arange(self.n_trials), stage)
            self._similarity[stage] = image_scores(tokens, self.decoder.unit_targets, unit_targets=True)
        return self._similarity[stage]

    def available_scores(self) -> list[str]:
        """Scores that have values for the current stage, in display order."""
        have = self.scores.get(self.stage, {})
        return [s for s in (*CAPTION_SCORES, "image_rank") if s in have] + self.other_models.score_keys()

    def score_label(self, name: str) -> str:
        """How a score is named on screen (another model's: its name and metric)."""
        return SCORE_LABELS.get(name) or f"{name.partition(':')[2]} {SCORE_LABELS[MODEL_SCORE]}"

    def score_values(self, name: str, stage: str | None = None) -> np.ndarray | None:
        """Every trial's value of a score (a stage's or another model's), None while unknown."""
        values = self.other_models.values(name)
        if values is None and self.repeats.repeat is not None:  # ranks from the chosen repeat; no caption scores
            return self.repeats.ranks(stage or self.stage) if name == "image_rank" else None
        return values if values is not None else self.scores.get(stage or self.stage, {}).get(name)

    def score(self, name: str, trial: int | None = None, stage: str | None = None) -> float | None:
        values = self.score_values(name, stage)
        if values is None:
            return None
        value = float(values[self.trial if trial is None else trial])
        return None if math.isnan(value) else value

    def iter_caption_scores(self, batch_size: int = 16) -> Iterator[ScoringProgress]:
        """Caption every test trial on every stage and score the captions: long work for a worker.

        Yields :class:`ScoringProgress` after each batch and before each metric, counted within each
        phase (a stage's captions, then the metrics; the new captions ride along, so the table fills as
        they come; a worker can stop between yields); returns a
        :class:`CaptionScores` (the generator's return value) to be applied with
        :meth:`set_caption_scores` on the GUI thread. Captions already made are reused. Reads
        the session, never changes it.
        """
        bundle, decoder, metrics = self.bundle, self.decoder, self.score_metrics
        n = bundle.n_trials
        captions: dict[str, list[str]] = {}
        for stage in bundle.stages:  # each step counts within its own phase: never a long wait at 99 %
            what = f"captioning {STAGE_LABELS[stage]}"
            if not decoder.has_all_tokens(stage):  # one pass over the weights, not one per batch
                for _ in decoder.iter_predict_all(stage):
                    pass
            known = dict(self.captions.get(stage, {}))
            todo = [t for t in range(n) if t not in known]
            done = n - len(todo)
            yield ScoringProgress(done, n, what)
            for start in range(0, len(todo), batch_size):
                chunk = todo[start:start + batch_size]
                tokens = decoder.tokens_for_trials(chunk, stage)
                new = dict(zip(chunk, captions_in_background(self.model_lock, decoder, tokens, batch_size)))
                known.update(new)
                done += len(chunk)
                yield ScoringProgress(done, n, what, {stage: new})
            captions[stage] = [known[t] for t in range(n)]
        scores: dict[str, dict[str, np.ndarray]] = {stage: {} for stage in bundle.stages}
        missing: dict[str, str] = {}
        jobs = [(stage, metric) for stage in bundle.stages for metric in metrics]
        for done, (stage, metric) in enumerate(jobs):
            # said before the metric runs (one call, seconds to a minute): the bar shows what runs now
            yield ScoringProgress(done, len(jobs), f"scoring {SCORE_LABELS[metric]} · {STAGE_LABELS[stage]}")
            report = caption_metrics(captions[stage], bundle.captions, metrics=[metric])
            if metric in report.per_caption:
                scores[stage][metric] = np.asarray(report.per_caption[metric], dtype=np.float64)
            missing.update(report.missing)
        yield ScoringProgress(len(jobs), len(jobs), "scoring")
        return CaptionScores(captions, scores, missing)

    def set_caption_scores(self, result: CaptionScores) -> None:
        for stage, texts in result.captions.items():
            self.captions[stage] = dict(enumerate(texts))
            self.scores.setdefault(stage, {}).update(result.scores.get(stage, {}))
        self.missing_scores = dict(result.missing)
        self._emit("scores")

    # ------------------------------------------------------------------ synthetic patterns

    def synthetic_tokens(self, voxels: np.ndarray, settings: SyntheticSettings | None = None,
                         trial: int | None = None) -> np.ndarray:
        settings = settings or self.synthetic
        if settings.mode in REGION_MODES:
            return region_tokens(self.decoder, voxels, settings.stage, settings.mode).tokens
        trial = self.trial if trial is None else trial
        return self.decoder.synthetic(settings.mode, np.asarray(voxels, dtype=np.int64), settings.stage,
                                      scale=settings.scale, trial=None if settings.mode == "roi" else trial,
                                      factor=settings.factor)

    def decode_synthetic(self, voxels: np.ndarray, settings: SyntheticSettings | None = None,
                         trial: int | None = None, k: int | None = None,
                         generation: int | None = None) -> SyntheticResult:
        """Decode the selection's synthetic pattern (slow when captioning: run it in a worker)."""
        steps = self.iter_decode_synthetic(voxels, settings, trial, k, generation)
        first = next(steps)
        return finish(steps) or first

    def iter_decode_synthetic(self, voxels: np.ndarray, settings: SyntheticSettings | None = None,
                              trial: int | None = None, k: int | None = None, generation: int | None = None,
                              superseded: Callable[[], bool] = never):
        """Retrievals first, caption second: yields a :class:`SyntheticResult` without its caption
        (milliseconds), then one with the caption so far after each generated token (still
        ``caption_pending``), then returns it captioned (a language-model call), or None when
        ``superseded()`` says a newer selection came in: before the caption started, or while it was
        being generated (it then stops within a token, so the newer caption need not wait for it).

        Pass ``settings``, ``trial``, ``k`` and ``generation`` captured on the GUI thread so a later
        change (or another bundle) cannot mix into a running decode.
        """
        generation = self.generation if generation is None else generation
        settings = settings or self.synthetic
        trial = self.trial if trial is None else trial
        tokens = self.synthetic_tokens(voxels, settings, trial)
        decoded = self.decoder.decode(tokens, settings.stage, k or self.k, caption=False)
        result = SyntheticResult(decoded, settings, int(np.unique(voxels).size),
                                 trial if settings.mode in TRIAL_MODES else None, caption_pending=self.can_caption,
                                 generation=generation)
        yield result
        if not self.can_caption:
            return result

        caption = yield from iter_foreground_text(  # the caption so far after each token: it streams into its box
            self.model_lock, partial(first_text, self.decoder.captions, tokens[None], superseded=superseded),
            superseded, step=lambda text: replace(result, decoded=replace(decoded, caption=text)))
        if caption is None:
            return None
        return replace(result, decoded=replace(decoded, caption=caption), caption_pending=False)

    def synthetic_pattern(self, voxels: np.ndarray, settings: SyntheticSettings | None = None,
                          trial: int | None = None) -> np.ndarray:
        """The voxel pattern the selection stands for, to show on the cortex."""
        settings = settings or self.synthetic
        voxels = np.asarray(voxels, dtype=np.int64)
        if settings.mode not in TRIAL_MODES:  # the region itself: the paper's pattern at its scale
            return roi_indicator(voxels, self.bundle.n_voxels) * (settings.scale if settings.mode == "roi" else 1.0)
        pattern = self.pattern(trial)
        return lesion(pattern, voxels) if settings.mode == "lesion" else boost(pattern, voxels, settings.factor)

    # ------------------------------------------------------------------ questions

    def answer_trial(self, question: str, histories: dict[str, Sequence[Turn]], trial: int, stage: str
                     ) -> dict[str, str]:
        """Answers about a trial from its brain pattern ("brain") and its true image tokens ("image"),
        each after its own dialogue so far. Slow: run it in a worker, with trial and stage captured."""
        return finish(self.iter_answer_trial(question, histories, trial, stage))

    def iter_answer_trial(self, question: str, histories: dict[str, Sequence[Turn]], trial: int, stage: str,
                          superseded: Callable[[], bool] = never):
        """:meth:`answer_trial` streamed for a worker: yields the answers so far after each token, returns
        them (None once ``superseded()``)."""
        sources = {"brain": self.repeats.tokens(trial, stage)[None],
                   "image": np.asarray(self.bundle.image_embeddings[[trial]])}
        return (yield from iter_answers(self, sources, question, histories, superseded))

    def answer_synthetic(self, question: str, histories: dict[str, Sequence[Turn]], voxels: np.ndarray,
                         settings: SyntheticSettings, trial: int) -> dict[str, str]:
        """The answer about the selection's synthetic pattern ("synthetic"). Slow: run it in a worker."""
        return finish(self.iter_answer_synthetic(question, histories, voxels, settings, trial))

    def iter_answer_synthetic(self, question: str, histories: dict[str, Sequence[Turn]], voxels: np.ndarray,
                              settings: SyntheticSettings, trial: int, superseded: Callable[[], bool] = never):
        """:meth:`answer_synthetic` streamed for a worker, as :meth:`iter_answer_trial`."""
        sources = {"synthetic": self.synthetic_tokens(voxels, settings, trial)[None]}
        return (yield from iter_answers(self, sources, question, histories, superseded))

    # ------------------------------------------------------------------ rois

    def roi_groups(self) -> dict[str, list[str]]:
        """ROI names of the bundle by group, in the bundle's order."""
        groups: dict[str, list[str]] = {}
        for name, spec in self.bundle.rois.items():
            groups.setdefault(spec["group"], []).append(name)
        return groups

    def vertex_values(self, voxel_values: np.ndarray) -> np.ndarray:
        """Voxel values shown on the cortex: one value per vertex (both hemispheres), NaN where unmapped."""
        return self.cortex.voxels_to_vertices(voxel_values)
