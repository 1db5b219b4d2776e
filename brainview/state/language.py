"""The session's language queries: phrase search, zero-shot labels and concept maps on the bundle it shows.

A part of :class:`~brainview.state.session.Session` (``session.language``), Qt-free like it. The slow
steps (loading the retrieval model's text encoder and projecting every trial, then each query)
are plain functions of a :class:`~brainview.decoding.language.LanguageProbe` captured on the GUI
thread, so the GUI runs them in workers and hands the result back with a setter. Every result
carries the probe it came from; a result whose probe is no longer the current one (the bundle
changed meanwhile) is dropped by the setter.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from brainview.decoding.language import (DEFAULT_LESION, DEFAULT_TEMPLATE, ConceptMap, LanguageProbe, LesionCheck,
                                         SearchResult, ZeroShot, parse_labels, truth_fields, unavailable_reason)
from brainview.events import Observable

EVENTS = ("ready", "search", "zero_shot", "concept")
NOT_LOADED = "the text encoder is not loaded yet"


@dataclass
class ConceptResult:
    """A concept map, its ROI ranking and its lesion check, as the views show them."""

    concept: ConceptMap
    rois: dict[str, float]
    lesion: LesionCheck


class LanguageTools(Observable):
    """What the language panel shows for the current bundle, and the calls that compute it."""

    EVENTS = EVENTS
    KIND = "language"

    def __init__(self, session):
        super().__init__()
        self.session = session
        self.probe: LanguageProbe | None = None
        self.reason: str | None = "no bundle is open"  # why queries are off; None when ready
        self.search: SearchResult | None = None
        self.zero_shot: ZeroShot | None = None
        self.concept: ConceptResult | None = None
        self.encoder_lock = threading.Lock()  # one text encoder, several workers
        session.connect("bundle", lambda s: self.reset())

    # ------------------------------------------------------------------ the probe

    @property
    def ready(self) -> bool:
        return self.probe is not None

    def reset(self) -> None:
        """A new bundle: every result goes; queries wait for :meth:`prepare` (or say why they cannot run)."""
        bundle = self.session.bundle
        self.probe, self.search, self.zero_shot, self.concept = None, None, None, None
        self.reason = "no bundle is open" if bundle is None else unavailable_reason(bundle) or NOT_LOADED
        for event in EVENTS:
            self._emit(event)

    @property
    def can_prepare(self) -> bool:
        return self.session.bundle is not None and self.reason == NOT_LOADED

    @staticmethod
    def prepare(bundle, device: str = "auto") -> LanguageProbe:
        """Load the text encoder and project every trial (slow: run it in a worker). Raises ``UserError``."""
        return LanguageProbe.load(bundle, device)

    def set_probe(self, probe: LanguageProbe) -> None:
        if probe.bundle is self.session.bundle:
            self.probe, self.reason = probe, None
            self._emit("ready")

    def set_failed(self, bundle, reason: str) -> None:
        if bundle is self.session.bundle:
            self.probe, self.reason = None, reason
            self._emit("ready")

    def truth_fields(self) -> list[str]:
        return truth_fields(self.session.bundle.trials) if self.session.bundle is not None else []

    # ------------------------------------------------------------------ queries (worker side)

    def run_search(self, probe: LanguageProbe, phrase: str) -> SearchResult:
        with self.encoder_lock:
            return probe.search(phrase)

    def run_classify(self, probe: LanguageProbe, labels: Sequence[str], template: str = DEFAULT_TEMPLATE,
                     truth_field: str | None = None) -> ZeroShot:
        parsed = parse_labels(labels, template)
        with self.encoder_lock:
            return probe.classify(parsed, truth_field or None)

    def run_concept(self, probe: LanguageProbe, phrase: str, trial: int | None = None,
                    fraction: float = DEFAULT_LESION, decoder=None, versus: Sequence[str] = ()) -> ConceptResult:
        """The map, its ROI means and its lesion check; captions when ``decoder`` can caption."""
        with self.encoder_lock:
            concept = probe.concept_map(phrase, trial, versus)
        rois = concept.roi_means({name: spec["voxels"] for name, spec in probe.bundle.rois.items()})
        captioner = None
        if decoder is not None and decoder.can_caption:
            def captioner(tokens: np.ndarray) -> list[str]:
                with self.session.model_lock:
                    return decoder.captions(tokens)
        missing = None if captioner else (decoder.captions_missing if decoder is not None else "no decoder")
        # the texts are embedded (cached) by now: the lesion and its captions need no encoder lock,
        # so a search typed meanwhile does not wait for the language model
        check = probe.lesion(concept, fraction, captioner=captioner, captions_missing=missing)
        return ConceptResult(concept, rois, check)

    # ------------------------------------------------------------------ results (GUI side)

    def _current(self, probe: LanguageProbe) -> bool:
        return probe is self.probe and probe is not None

    def set_search(self, probe: LanguageProbe, result: SearchResult | None) -> None:
        if result is None or self._current(probe):
            self.search = result
            self._emit("search")

    def set_zero_shot(self, probe: LanguageProbe, result: ZeroShot) -> None:
        if self._current(probe):
            self.zero_shot = result
            self._emit("zero_shot")

    def set_concept(self, probe: LanguageProbe, result: ConceptResult | None) -> None:
        if result is None or self._current(probe):
            self.concept = result
            self._emit("concept")

    def match_score(self, trial: int, source: str = "brain") -> float | None:
        """The current phrase's score of a trial (``source`` "brain" or "image"), None without a search."""
        if self.search is None:
            return None
        return float((self.search.brain if source == "brain" else self.search.image)[trial])
