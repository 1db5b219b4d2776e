"""Decoding across a study's subjects (Qt-free): what the subjects panel and ``brainview roi-table|eval
STUDY`` show.

Each subject decodes with its own brain model; subjects whose language models are the same files
(the demo study's are hard links, NSD bundles name one model id) share one loaded adapter, so four
NSD subjects hold OPT-2.7B in memory once. Every method may take seconds (captioning): call them
from a worker, never from the GUI thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from brainview.analysis.evaluation import evaluate_bundle
from brainview.analysis.roi_methods import describe_regions
from brainview.analysis.study import Study, evaluation_summary
from brainview.decoding.retrieval import first_true_ranks, image_scores, rank_of, text_scores


@dataclass(frozen=True)
class SubjectTrial:
    """One subject's decoding of one stimulus: per stage the caption (None until captioned or when
    captions are off), the true image's rank among the test images and (stage 2) the best true
    caption's rank among all captions, given the brain pattern."""

    subject: str
    trial: int
    trial_id: str
    captions: dict[str, str | None]
    image_rank: dict[str, int]
    text_rank: dict[str, int]
    n_images: int
    n_texts: int


class StudyDecoding:
    """Decoders of a study's subjects, loaded on first use, with shared language models."""

    def __init__(self, study: Study, device: str = "auto", load_language_models: bool = True,
                 cpu_precision: str | None = None):
        self.study = study
        self.device = device
        self.cpu_precision = cpu_precision
        self.load_language_models = load_language_models
        self._decoders: dict[str, Any] = {}
        self._lock = threading.Lock()
        # one decoding at a time: the panel's workers (stimulus, ROI table, summary) share these models
        self._busy = threading.RLock()

    def decoder(self, subject: str):
        """The subject's :class:`~brainview.decoding.decoder.Decoder` (loaded once)."""
        with self._lock:
            if subject not in self._decoders:
                self._decoders[subject] = self._load(subject)
            return self._decoders[subject]

    def _load(self, subject: str):
        from brainview.decoding.decoder import Decoder

        # subjects (and the window) naming the same model files share one loaded model
        return Decoder.load(self.study.bundle(subject), device=self.device,
                            load_language_models=self.load_language_models, cpu_precision=self.cpu_precision)

    def cancel(self) -> None:
        """Stop captioning in every loaded decoder (a call in flight raises ``Cancelled`` within a token)."""
        for decoder in list(self._decoders.values()):
            decoder.cancel()

    # ---------------------------------------------------------------- one stimulus in every subject

    def stimulus(self, key: str, captions: bool = True) -> dict[str, SubjectTrial | None]:
        """Every subject's decoding of stimulus ``key`` (None for a subject that did not see it)."""
        match = self.study.stimuli
        return {s: (None if (t := match.trial_of(s, key)) is None else self.subject_trial(s, t, captions))
                for s in self.study.ids}

    def subject_trial(self, subject: str, trial: int, captions: bool = True) -> SubjectTrial:
        with self._busy:
            return self._subject_trial(subject, trial, captions)

    def _subject_trial(self, subject: str, trial: int, captions: bool) -> SubjectTrial:
        decoder = self.decoder(subject)
        bundle = decoder.bundle
        texts, image_rank, text_rank = {}, {}, {}
        owner = np.asarray(bundle.text_index)[:, 0]
        for stage in decoder.stages:
            tokens = decoder.tokens_for_trials([trial], stage)
            image_rank[stage] = rank_of(image_scores(tokens, bundle.image_embeddings)[0], trial)
            if stage == "stage2" and decoder.model.has_text_projection:
                scores = text_scores(decoder.model.project_text(tokens), bundle.text_embeddings)
                text_rank[stage] = int(first_true_ranks(scores, (owner == trial)[None])[0])
            texts[stage] = decoder.captions(tokens)[0] if captions and decoder.can_caption else None
        return SubjectTrial(subject, trial, bundle.trials[trial]["id"], texts, image_rank, text_rank,
                            bundle.n_trials, int(bundle.text_embeddings.shape[0]))

    # ---------------------------------------------------------------- the ROI table across subjects

    def roi_names(self) -> list[str]:
        """Every ROI of any subject, in the first subject's order, then the others' additions."""
        names: dict[str, None] = {}
        for s in self.study.ids:
            names.update(dict.fromkeys(self.study.bundle(s).rois))
        return list(names)

    def roi_captions(self, subject: str, rois: list[str], stage: str, scale: float | None = None,
                     method: str = "paper", **options) -> dict[str, dict[str, Any]]:
        """{ROI: {"caption", "n_voxels", "group", ...}} by ``method`` (the paper's synthetic pattern by
        default; :mod:`brainview.analysis.roi_methods`), for the ``rois`` the subject has (an ROI it lacks
        is left out)."""
        with self._busy:
            return self._roi_captions(subject, rois, stage, scale, method, options)

    def _roi_captions(self, subject: str, rois: list[str], stage: str, scale: float | None, method: str,
                      options: dict) -> dict[str, dict[str, Any]]:
        decoder = self.decoder(subject)
        bundle = decoder.bundle
        regions = {n: bundle.roi_voxels(n) for n in rois if n in bundle.rois}
        if method == "paper":
            options = {**options, "scale": scale}
        described = describe_regions(decoder, regions, stage, method, **options)
        return {n: {**d, "n_voxels": int(regions[n].size), "group": bundle.rois[n]["group"]}
                for n, d in described.items()}

    def roi_table(self, stage: str, rois: list[str] | None = None, scale: float | None = None,
                  method: str = "paper", **options) -> dict[str, dict[str, dict[str, Any]]]:
        """{subject: {ROI: {"caption", "n_voxels", "group", ...}}}: Table 3 of the paper across subjects
        (or the same table by another method)."""
        rois = self.roi_names() if rois is None else rois
        return {s: self.roi_captions(s, rois, stage, scale, method, **options) for s in self.study.ids}

    # ---------------------------------------------------------------- per-subject summary

    def recorded_summary(self, subject: str, stage: str) -> dict[str, Any] | None:
        """Retrieval top-1 (each direction) and METEOR of ``stage`` as recorded in the bundle's manifest
        by its builder (``metrics[stage]``, the ``brainview eval`` figures); None when not recorded."""
        recorded = self.study.bundle(subject).manifest.get("metrics", {}).get(stage)
        if not isinstance(recorded, dict) or "retrieval" not in recorded:
            return None
        return evaluation_summary(recorded)

    def summary(self, subject: str, stage: str, repeats: int | None = None, seed: int = 42) -> dict[str, Any]:
        """The recorded figures; else retrieval computed now (seconds) and METEOR None: captioning every
        test trial of every subject is ``brainview eval STUDY``'s job, not a panel's."""
        recorded = self.recorded_summary(subject, stage)
        if recorded is not None:
            return {**recorded, "stage": stage, "source": "recorded in the bundle by its builder"}
        return {**evaluation_summary(self.evaluate(subject, stage, repeats, seed, captions=False)), "stage": stage,
                "source": "retrieval computed now; METEOR not recorded (run brainview eval on the study)"}

    def summaries(self, stage: str = "stage2") -> dict[str, dict[str, Any]]:
        """Every subject's :meth:`summary` of ``stage`` (a subject without it: its last stage), in study order:
        what the subjects panel shows and ``brainview table STUDY`` writes (Table 3 across subjects)."""
        out = {}
        for s in self.study.ids:
            stages = self.study.bundle(s).stages
            out[s] = self.summary(s, stage if stage in stages else stages[-1])
        return out

    def evaluate(self, subject: str, stage: str, repeats: int | None = None, seed: int = 42,
                 captions: bool = True, fmri_repeats: str = "all") -> dict[str, Any]:
        """``brainview eval`` of one subject."""
        with self._busy:
            decoder = self.decoder(subject)
            return evaluate_bundle(decoder.bundle, decoder, stage, repeats, seed, captions=captions,
                                   fmri_repeats=fmri_repeats)
