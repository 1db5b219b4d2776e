"""Ask the brain in language: phrase search, zero-shot labels and concept maps, in one place.

The three questions of BrainCLIP and Neuro-Vision-to-Language, all asked in the stage-2
brain↔text space (DESIGN.md §4): a text goes through the retrieval model's Q-Former text path
and ``text_projection`` (``Blip2Adapter.text_embeddings``); a brain pattern goes through the
stage-2 weights and projection (``BrainModel.project_text``); their score is the maximum over
query tokens of the cosine (``retrieval.text_scores``), the score ``text_given_brain`` ranks by.
Every answer also comes from the trials' *true* image tokens through the same projection: what
a perfect decoder would give, the upper bound the brain's answer is read against.

* :meth:`LanguageProbe.search` ranks the test trials for a phrase.
* :meth:`LanguageProbe.classify` decodes each trial into one of a list of labels, zero-shot
  (CLIP's prompt template and prompt ensembling), with accuracy against a truth field.
* :meth:`LanguageProbe.concept_map` says which voxels drive a phrase's score (or, against
  alternatives, its zero-shot probability): per trial the gradient × input (closed form for the
  linear model), across trials the Haufe et al. (2014) activation pattern, the covariance of
  each voxel with the score; :meth:`LanguageProbe.lesion` checks a map by silencing its top
  voxels against as many random ones.

The CLI (``brainview search|classify|localize``), the session and the GUI all call this module;
it imports neither Qt nor torch (the text encoder is handed in as a function).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from brainview.decoding.brain_model import BrainModel
from brainview.decoding.retrieval import text_scores
from brainview.decoding.vectors import unit_norm
from brainview.errors import UserError

STAGE = "stage2"
DEFAULT_TEMPLATE = "a photo of a {}"
DEFAULT_LESION = 0.05  # share of voxels silenced by the lesion check
RANDOM_DRAWS = 20  # random lesions averaged for the control
MATCHING_SHARE = 0.10  # the trial-independent lesion is scored on the phrase's best-matching tenth of the trials
CLIP_TEMPERATURE = 0.01  # softmax temperature of zero-shot probabilities (CLIP's logit scale 100)
TOP5 = 5

Embed = Callable[[Sequence[str]], np.ndarray]
Captioner = Callable[[np.ndarray], list[str]]


# --------------------------------------------------------------------------- availability


def _no_stage2(bundle) -> str:
    return (f"language queries need a stage 2 with its text projection, and {bundle.name!r} has only "
            f"{', '.join(bundle.stages)}")


def unavailable_reason(bundle) -> str | None:
    """Why language queries cannot run on ``bundle`` (no stage 2, no retrieval model named), or None."""
    if STAGE not in bundle.stages or "stage2.projection.weight" not in bundle.weights:
        return _no_stage2(bundle)
    if not bundle.vlm.get("retrieval"):
        return (f"language queries need the retrieval model's text encoder, and {bundle.name!r} names none "
                "(manifest vlm.retrieval)")
    return None


def load_text_encoder(bundle, device: str = "auto"):
    """The bundle's retrieval model's text path only (Q-Former text side + ``text_projection``: its
    vision tower, 986 M parameters in BLIP-2, is never read), loaded on ``device``; a full GPU falls
    back to the CPU. Raises ``UserError`` saying why when the bundle cannot answer language queries."""
    reason = unavailable_reason(bundle)
    if reason:
        raise UserError(reason)
    from brainview.decoding.blip2 import Blip2Adapter, DeviceOutOfMemory

    reference = bundle.resolve_model(bundle.vlm["retrieval"])
    try:
        adapter = Blip2Adapter.load(captioner=None, retrieval=reference, device=device, targets_only=True)
    except DeviceOutOfMemory:
        adapter = Blip2Adapter.load(captioner=None, retrieval=reference, device="cpu", targets_only=True)
    except UserError as exc:
        raise UserError(f"language queries need the retrieval model's text encoder, which cannot be loaded: "
                        f"{exc}") from None
    if adapter.text_dim != bundle.text_dim:
        raise UserError(f"the retrieval model embeds texts in {adapter.text_dim} dimensions but the bundle's "
                        f"stage-2 projection maps into {bundle.text_dim}: they do not belong together")
    return adapter


# --------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class Label:
    """A zero-shot class: the name matched against the truth and the prompts whose embeddings are averaged."""

    name: str
    prompts: tuple[str, ...]


def parse_labels(items: Sequence[str], template: str = DEFAULT_TEMPLATE) -> list[Label]:
    """Labels from ``NAME`` (prompt: the template with ``{}`` replaced by NAME) or ``NAME=PROMPT1;PROMPT2``."""
    if "{}" not in template:
        raise UserError(f"the prompt template {template!r} has no {{}} where the label goes")
    labels: list[Label] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        name, _, prompts = item.partition("=")
        name = name.strip()
        if not name:
            raise UserError(f"label {item!r} has no name before '='")
        if "=" in item:
            own = tuple(p.strip() for p in prompts.split(";") if p.strip())
            if not own:
                raise UserError(f"label {name!r} has '=' but no prompts after it")
        else:
            own = (template.replace("{}", name),)
        labels.append(Label(name, own))
    names = [label.name for label in labels]
    if len(labels) < 2:
        raise UserError(f"zero-shot labelling needs at least two labels, got {len(labels)}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserError(f"label {duplicates[0]!r} is given twice")
    return labels


def field_value(trial: Mapping, path: str):
    """The value at a dotted path (``scene.category``) of a trial object, or None where it is absent."""
    value = trial
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def truth_fields(trials: Sequence[Mapping], limit: int = 64) -> list[str]:
    """Dotted paths of the scalar fields of the trial objects that vary across trials (truth candidates)."""
    def walk(obj, prefix=""):
        for key, value in obj.items():
            path = f"{prefix}{key}"
            if isinstance(value, Mapping):
                yield from walk(value, path + ".")
            elif isinstance(value, (str, int, bool)) and key != "id":
                yield path
    paths = list(dict.fromkeys(p for t in trials[:limit] for p in walk(t)))
    return [p for p in paths if len({str(field_value(t, p)) for t in trials[:limit]}) > 1]


def truth_indices(trials: Sequence[Mapping], labels: Sequence[Label], truth_field: str) -> np.ndarray:
    """Label index of each trial's truth value at ``truth_field`` (-1 where it is not a label); ``UserError``
    when no trial has the field or no value is a label."""
    values = [field_value(t, truth_field) for t in trials]
    present = [v for v in values if v is not None]
    if not present:
        fields = truth_fields(trials)
        raise UserError(f"no trial has a field {truth_field!r}; "
                        + (f"fields that vary: {', '.join(fields)}" if fields else "the trials carry no such fields"))
    index = {label.name: i for i, label in enumerate(labels)}
    truth = np.array([index.get(str(v), -1) if v is not None else -1 for v in values], dtype=np.int64)
    if not (truth >= 0).any():
        seen = sorted({str(v) for v in present})
        raise UserError(f"none of the trials' {truth_field} values ({', '.join(seen[:12])}) is one of the labels "
                        f"({', '.join(index)})")
    return truth


def clean_phrase(phrase: str) -> str:
    """The phrase with its whitespace collapsed; ``UserError`` when nothing is left."""
    phrase = " ".join(str(phrase).split())
    if not phrase:
        raise UserError("the phrase is empty: type what to look for")
    return phrase


# --------------------------------------------------------------------------- results


@dataclass
class SearchResult:
    """A phrase's score for every test trial, from the brain and from the true image tokens."""

    phrase: str
    brain: np.ndarray  # (n_trials,)
    image: np.ndarray  # (n_trials,)

    @property
    def order(self) -> np.ndarray:
        """Trial indices, best brain match first (ties by trial order)."""
        return np.argsort(-self.brain, kind="stable")

    @property
    def agreement(self) -> float:
        """Spearman correlation of the brain's and the true images' scores: how much of the ranking the brain explains."""
        from scipy.stats import spearmanr

        rho = spearmanr(self.brain, self.image).statistic
        return float(rho) if np.isfinite(rho) else math.nan

    def overlap(self, k: int) -> float:
        """Share of the brain's top k trials that are also in the true images' top k."""
        k = max(1, min(k, self.brain.size))
        brain_top = set(np.argsort(-self.brain, kind="stable")[:k].tolist())
        image_top = set(np.argsort(-self.image, kind="stable")[:k].tolist())
        return len(brain_top & image_top) / k


@dataclass
class Accuracy:
    """Zero-shot accuracy on the trials whose truth is one of the labels."""

    top1: float
    top5: float
    ci95: tuple[float, float]  # Wilson interval of top1
    top5_ci95: tuple[float, float]
    chance: float  # top-1 of a uniform random guess, 1 / n_labels
    chance_top5: float
    n: int
    confusion: np.ndarray  # (n_labels, n_labels): rows truth, columns top-1 prediction

    def to_json(self) -> dict:
        return {"top1": self.top1, "top5": self.top5, "ci95": list(self.ci95), "top5_ci95": list(self.top5_ci95),
                "chance": self.chance, "chance_top5": self.chance_top5, "n": self.n}


@dataclass
class ZeroShot:
    """Per-trial label scores from the brain and from the true image tokens, with accuracy where a truth exists."""

    labels: list[Label]
    brain: np.ndarray  # (n_trials, n_labels)
    image: np.ndarray
    truth_field: str | None = None
    truth: np.ndarray | None = None  # (n_trials,) label index, -1 where the trial's truth is not a label
    accuracy: Accuracy | None = None
    image_accuracy: Accuracy | None = None

    @property
    def names(self) -> list[str]:
        return [label.name for label in self.labels]

    def top(self, trial: int, k: int = TOP5, source: str = "brain") -> list[str]:
        scores = (self.brain if source == "brain" else self.image)[trial]
        return [self.labels[i].name for i in np.argsort(-scores, kind="stable")[:k]]


@dataclass
class ConceptMap:
    """Per-voxel weight of a phrase's score: ``kind`` "gradient×input" (one trial) or "covariance" (all trials)."""

    phrase: str
    values: np.ndarray  # (n_voxels,)
    kind: str
    trial: int | None
    versus: tuple[str, ...] = ()  # alternatives: the map is of the phrase's probability against them

    def top_voxels(self, fraction: float = DEFAULT_LESION) -> np.ndarray:
        """The ``fraction`` of voxels with the largest (most positive) values, best first."""
        k = top_count(fraction, self.values.size)
        return np.argsort(-self.values, kind="stable")[:k]

    def roi_means(self, rois: Mapping[str, np.ndarray]) -> dict[str, float]:
        """The map's mean over each ROI's voxels, best first (empty ROIs left out)."""
        means = {name: float(self.values[np.asarray(v, dtype=np.int64)].mean()) for name, v in rois.items()
                 if len(v)}
        return dict(sorted(means.items(), key=lambda item: -item[1]))


@dataclass
class LesionCheck:
    """What silencing a map's top voxels does to a phrase's score, against as many random voxels."""

    top_fraction: float
    n_voxels: int
    trials: np.ndarray  # the trials the score is averaged over
    score_before: float
    score_after: float
    random_after: np.ndarray  # (draws,) mean score after each random lesion
    caption_trial: int | None = None
    caption_before: str | None = None
    caption_after: str | None = None
    caption_random: str | None = None
    captions_missing: str | None = None
    measure: str = "score"  # what the scores are: the phrase's "score", or its zero-shot "probability"

    @property
    def score_drop(self) -> float:
        return self.score_before - self.score_after

    @property
    def random_score_drop(self) -> float:
        return self.score_before - float(self.random_after.mean())

    @property
    def random_score_drop_sd(self) -> float:
        return float(self.random_after.std(ddof=1)) if self.random_after.size > 1 else 0.0


def top_count(fraction: float, n: int) -> int:
    if not 0 < fraction <= 1:
        raise UserError(f"the lesion share must lie in (0, 100] %, not {fraction * 100:g} %")
    return max(1, int(round(fraction * n)))


# --------------------------------------------------------------------------- accuracy


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (scipy's binomial test)."""
    if n == 0:
        return (math.nan, math.nan)
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return (float(ci.low), float(ci.high))


def zero_shot_accuracy(scores: np.ndarray, truth: np.ndarray, k: int = TOP5) -> Accuracy:
    """Top-1 and top-k accuracy of label scores (n, L) against truth indices (n,; -1: not a label)."""
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.int64)
    n_labels = scores.shape[1]
    known = truth >= 0
    s, t = scores[known], truth[known]
    k = min(k, n_labels)
    # rank of the true label: labels scoring strictly higher, plus 1 (ties count in the label's favour)
    true_score = s[np.arange(len(t)), t]
    rank = (s > true_score[:, None]).sum(axis=1) + 1
    hits1, hits5 = int((rank == 1).sum()), int((rank <= k).sum())
    n = int(known.sum())
    predicted = np.argmax(s, axis=1)
    confusion = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(confusion, (t, predicted), 1)
    return Accuracy(hits1 / n if n else math.nan, hits5 / n if n else math.nan, wilson_interval(hits1, n),
                    wilson_interval(hits5, n), 1.0 / n_labels, k / n_labels, n, confusion)


# --------------------------------------------------------------------------- the probe


@dataclass
class LanguageProbe:
    """The stage-2 brain↔text space of one bundle, with a text encoder to embed new phrases.

    Built once per bundle (it projects every test trial: run it in a worker); every query after
    that is a few matrix products plus one text embedding. Reads the bundle, never changes it.
    """

    bundle: object
    embed: Embed
    model: BrainModel = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        if self.model is None:
            self.model = BrainModel.from_bundle(self.bundle)
        if STAGE not in self.model.stages or not self.model.has_text_projection:
            raise UserError(_no_stage2(self.bundle))
        self.patterns = np.asarray(self.bundle.fmri, dtype=np.float32)
        self.brain_projected = self._project(self.patterns)
        self.image_projected = self.model.project_text(np.asarray(self.bundle.image_embeddings, dtype=np.float32))
        self._embeddings: dict[str, np.ndarray] = {}

    @property
    def n_trials(self) -> int:
        return len(self.patterns)

    def _project(self, patterns: np.ndarray) -> np.ndarray:
        return self.model.project_text(self.model.predict(patterns, stage=STAGE))

    # ----------------------------------------------------------------- texts

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Text embeddings (n, text_dim), L2-normalized, cached per text."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._embeddings]
        if todo:
            new = np.asarray(self.embed(todo), dtype=np.float32)
            if new.shape != (len(todo), self.brain_projected.shape[2]):
                raise UserError(f"the text encoder returned embeddings of shape {new.shape}, expected "
                                f"({len(todo)}, {self.brain_projected.shape[2]})")
            self._embeddings.update(zip(todo, unit_norm(new)))
        return np.stack([self._embeddings[t] for t in texts])

    def phrase_embedding(self, phrase: str) -> np.ndarray:
        return self.embed_texts([clean_phrase(phrase)])[0]

    def label_embeddings(self, labels: Sequence[Label]) -> np.ndarray:
        """One embedding per label: its prompts' embeddings averaged and renormalized (CLIP's prompt ensembling)."""
        return np.stack([unit_norm(self.embed_texts(list(label.prompts)).mean(axis=0)) for label in labels])

    # ----------------------------------------------------------------- search

    def search(self, phrase: str) -> SearchResult:
        text = self.phrase_embedding(phrase)
        return SearchResult(clean_phrase(phrase), text_scores(self.brain_projected, text[None])[:, 0],
                            text_scores(self.image_projected, text[None])[:, 0])

    # ----------------------------------------------------------------- zero-shot

    def classify(self, labels: Sequence[Label], truth_field: str | None = None) -> ZeroShot:
        embeddings = self.label_embeddings(labels)
        result = ZeroShot(list(labels), text_scores(self.brain_projected, embeddings),
                          text_scores(self.image_projected, embeddings), truth_field)
        if truth_field:
            result.truth = truth_indices(self.bundle.trials, labels, truth_field)
            result.accuracy = zero_shot_accuracy(result.brain, result.truth)
            result.image_accuracy = zero_shot_accuracy(result.image, result.truth)
        return result

    # ----------------------------------------------------------------- concept maps

    def gradient(self, pattern: np.ndarray, text: np.ndarray) -> tuple[np.ndarray, float, int]:
        """d score / d pattern in closed form, the score and its winning query token.

        score = max_q û_q·t with u_q = P (W_q x + b_q) + c and û = u/|u|; at the winning token q*,
        d score/dx = W_q*ᵀ Pᵀ (t − û (û·t)) / |u| (the rows of the stage-2 weight of that token,
        through the projection, dotted with the text direction less its part along û).
        """
        x = np.asarray(pattern, dtype=np.float64)
        lin = self.model.stage(STAGE)
        n_query, query_dim = self.model.n_query, self.model.query_dim
        tokens = (lin.weight.astype(np.float64) @ x + lin.bias).reshape(n_query, query_dim)
        p = self.model.projection_weight.astype(np.float64)
        u = tokens @ p.T + self.model.projection_bias
        norms = np.maximum(np.linalg.norm(u, axis=1), 1e-12)
        unit = u / norms[:, None]
        t = np.asarray(text, dtype=np.float64)
        cos = unit @ t
        q = int(np.argmax(cos))
        d_u = (t - unit[q] * cos[q]) / norms[q]
        rows = lin.weight[q * query_dim:(q + 1) * query_dim].astype(np.float64)
        return rows.T @ (p.T @ d_u), float(cos[q]), q

    def _texts(self, phrase: str, versus: Sequence[str]) -> np.ndarray:
        """The phrase's embedding, then its alternatives' (rows)."""
        alternatives = [clean_phrase(v) for v in versus]
        if clean_phrase(phrase) in alternatives:
            raise UserError(f"{phrase!r} is among its own alternatives")
        return self.embed_texts([clean_phrase(phrase), *alternatives])

    @staticmethod
    def _measure(projected: np.ndarray, texts: np.ndarray) -> np.ndarray:
        """Per trial: the phrase's score, or with alternatives its zero-shot probability among them."""
        scores = text_scores(projected, texts).astype(np.float64)
        if len(texts) == 1:
            return scores[:, 0]
        logits = (scores - scores.max(axis=1, keepdims=True)) / CLIP_TEMPERATURE
        return np.exp(logits[:, 0]) / np.exp(logits).sum(axis=1)

    def concept_map(self, phrase: str, trial: int | None = None, versus: Sequence[str] = ()) -> ConceptMap:
        """Gradient × input on one trial, or (``trial`` None) the activation pattern over the test trials.

        The trial-independent map is Haufe et al.'s (2014) pattern for one decoded quantity:
        cov(voxel, quantity) / sd(quantity) over the test trials, the voxel's activation (in the
        pattern's units, z) that goes with one standard deviation of it. Unlike the raw decoder
        weights it says where the phrase's content is *in the data*. The quantity is the phrase's
        score, or with ``versus`` its zero-shot probability against those alternatives (softmax
        at CLIP's temperature): where the decoder tells the phrase *from the alternatives*, which
        leaves out what they share.
        """
        texts = self._texts(phrase, versus)
        if trial is not None:
            if not 0 <= trial < self.n_trials:
                raise UserError(f"trial {trial} is outside 0..{self.n_trials - 1}")
            x = self.patterns[trial]
            grads = [self.gradient(x, t) for t in texts]
            grad = grads[0][0]
            if len(texts) > 1:  # d softmax_0 = p_0 (d s_0 − Σ_j p_j d s_j) / τ
                probability = self._measure(self.brain_projected[trial:trial + 1], texts)[0]
                logits = np.array([g[1] for g in grads]) / CLIP_TEMPERATURE
                weights = np.exp(logits - logits.max())
                weights /= weights.sum()
                grad = probability * (grad - sum(w * g[0] for w, g in zip(weights, grads))) / CLIP_TEMPERATURE
            return ConceptMap(phrase, (grad * x).astype(np.float32), "gradient×input", trial, tuple(versus))
        quantity = self._measure(self.brain_projected, texts)
        centred = quantity - quantity.mean()
        sd = centred.std(ddof=1) if len(quantity) > 1 else 0.0
        if not sd > 0:
            raise UserError("the phrase scores every trial the same: there is no covariance to map")
        values = (self.patterns - self.patterns.mean(axis=0)).T.astype(np.float64) @ centred / (len(centred) - 1) / sd
        return ConceptMap(phrase, values.astype(np.float32), "covariance", None, tuple(versus))

    def lesion(self, concept: ConceptMap, fraction: float = DEFAULT_LESION, *, draws: int = RANDOM_DRAWS,
               seed: int = 0, captioner: Captioner | None = None, captions_missing: str | None = None) -> LesionCheck:
        """Silence the map's top ``fraction`` of voxels, and as a control as many random voxels (``draws`` times).

        Measured (the map's quantity: the phrase's score, or its probability against the map's
        alternatives) on the map's trial, or for a trial-independent map on the best-matching tenth
        of the trials (the trials where the phrase is there to lose). With ``captioner`` (stage-2
        tokens → captions), that trial (or the best match) is captioned intact, lesioned, and with
        the first random lesion.
        """
        texts = self._texts(concept.phrase, concept.versus)
        if concept.trial is not None:
            trials = np.array([concept.trial])
        else:
            order = np.argsort(-self._measure(self.brain_projected, texts), kind="stable")
            trials = order[:max(1, int(round(MATCHING_SHARE * len(order))))]
        top = concept.top_voxels(fraction)
        patterns = self.patterns[trials]

        def measured(voxels) -> float:
            silenced = patterns if voxels is None else silence_many(patterns, voxels)
            return float(self._measure(self._project(silenced), texts).mean())

        rng = np.random.default_rng(seed)
        random_sets = [rng.choice(self.patterns.shape[1], size=top.size, replace=False) for _ in range(draws)]
        check = LesionCheck(fraction, int(top.size), trials, measured(None), measured(top),
                            np.array([measured(voxels) for voxels in random_sets]),
                            caption_trial=int(trials[0]), captions_missing=captions_missing,
                            measure="probability" if concept.versus else "score")
        if captioner is not None:
            x = self.patterns[trials[0]]
            variants = np.stack([x, silence_many(x[None], top)[0], silence_many(x[None], random_sets[0])[0]])
            tokens = self.model.predict(variants, stage=STAGE)
            check.caption_before, check.caption_after, check.caption_random = captioner(tokens)
        return check


def silence_many(patterns: np.ndarray, voxels: np.ndarray) -> np.ndarray:
    """Patterns (n, n_voxels) with ``voxels`` set to 0, the z-scored baseline (``synthetic.lesion``'s rule)."""
    out = np.array(patterns, dtype=np.float32, copy=True)
    out[:, np.asarray(voxels, dtype=np.int64)] = 0.0
    return out
