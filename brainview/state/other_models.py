"""Other models' captions in the app (Qt-free): each model's caption of every test trial beside the
bundle's own stages, its per-trial scores, and "model A minus model B" per trial for one sort.

Files are matched by :func:`brainview.analysis.model_captions.match_captions` (what they miss or have
in excess is kept for the user to see); scores come from :func:`brainview.decoding.metrics.caption_metrics`
in a worker (:meth:`OtherModels.compute_scores`), never on the GUI thread.
"""

from __future__ import annotations

import numpy as np

from brainview.analysis.model_captions import ModelCaptions, match_captions
from brainview.events import Observable
from brainview.errors import UserError

#: the per-trial score each model gets in the trial table (the app's caption score)
MODEL_SCORE = "meteor"
#: a model's score among the session's scores (worst first, the histogram): "model:NAME"
KEY_PREFIX = "model:"


class OtherModels(Observable):
    """The models added to the open bundle; emits ``models`` when one is added, scored or the pair changes."""

    EVENTS = ("models",)
    KIND = "other-models"

    def __init__(self, session):
        super().__init__()
        self.session = session
        self.models: list[ModelCaptions] = []
        self.scores: dict[str, np.ndarray] = {}  # name -> per-trial MODEL_SCORE (NaN where no caption)
        self.missing: dict[str, str] = {}  # name -> why its scores are absent
        self.pair: tuple[str, str] | None = None  # "A minus B" in the trial table
        session.connect("bundle", lambda s: self.clear())

    def clear(self) -> None:
        if self.models:
            self.models, self.scores, self.missing, self.pair = [], {}, {}, None
            self._emit("models")

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def add(self, name: str, path: str) -> ModelCaptions:
        """Match a model's caption file to the open bundle's test trials (a file keeps its name: re-adding replaces)."""
        if not self.session.has_bundle:
            raise UserError("open a bundle before adding model captions")
        model = match_captions(name, path, self.session.bundle.trials)
        self.models = [m for m in self.models if m.name != name] + [model]
        self.scores.pop(name, None)
        if self.pair is None and len(self.models) >= 2:
            self.pair = (self.models[-2].name, self.models[-1].name)
        self._emit("models")
        return model

    def model(self, name: str) -> ModelCaptions:
        return next(m for m in self.models if m.name == name)

    def caption(self, name: str, trial: int) -> str | None:
        return self.model(name).captions[trial]

    def compute_scores(self, name: str) -> tuple[str, np.ndarray | None, str | None]:
        """(name, per-trial scores, why missing); heavy: run it in a worker, then :meth:`set_scores`."""
        from brainview.decoding.metrics import caption_metrics

        model = self.model(name)
        rows = [i for i, c in enumerate(model.captions) if c is not None]
        refs = self.session.bundle.captions
        report = caption_metrics([model.captions[i] for i in rows], [refs[i] for i in rows], [MODEL_SCORE])
        if MODEL_SCORE not in report.per_caption:
            return name, None, report.missing.get(MODEL_SCORE, "not computed")
        scores = np.full(len(model.captions), np.nan)
        scores[rows] = report.per_caption[MODEL_SCORE]
        return name, scores, None

    def set_scores(self, result: tuple[str, np.ndarray | None, str | None]) -> None:
        name, scores, why = result
        if name not in self.names:
            return  # the bundle changed meanwhile
        if scores is None:
            self.missing[name] = why or ""
        else:
            self.scores[name] = scores
        self._emit("models")

    def score(self, name: str, trial: int) -> float | None:
        values = self.scores.get(name)
        return None if values is None or np.isnan(values[trial]) else float(values[trial])

    def score_keys(self) -> list[str]:
        """The session-score names of the models scored so far."""
        return [KEY_PREFIX + n for n in self.names if n in self.scores]

    def values(self, key: str) -> np.ndarray | None:
        """Per-trial scores of the model a session-score name (``model:NAME``) stands for, else None."""
        return self.scores.get(key[len(KEY_PREFIX):]) if key.startswith(KEY_PREFIX) else None

    def set_pair(self, a: str, b: str) -> None:
        if a not in self.names or b not in self.names or a == b:
            raise UserError(f"choose two different models among {', '.join(self.names)}")
        self.pair = (a, b)
        self._emit("models")

    def difference(self, trial: int) -> float | None:
        """The pair's score difference on ``trial`` (A minus B), ``None`` while unknown."""
        if self.pair is None:
            return None
        a, b = (self.score(n, trial) for n in self.pair)
        return None if a is None or b is None else a - b
