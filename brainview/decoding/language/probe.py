"""The probe that ties the language parts to one bundle: which bundles can answer (:func:`unavailable_reason`),
the retrieval model's text path (:func:`load_text_encoder`) and :class:`LanguageProbe` (search, zero-shot
labels, concept maps and lesions in the stage-2 brain↔text space; the package docstring says how)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from brainview.decoding.brain_model import BrainModel
from brainview.decoding.language.concept_maps import (DEFAULT_LESION, MATCHING_SHARE, RANDOM_DRAWS, ConceptMap,
                                                      LesionCheck, haufe_pattern, score_gradient, silence_many)
from brainview.decoding.language.phrases import Label, parse_query, truth_indices
from brainview.decoding.language.search import SearchResult
from brainview.decoding.language.vocabulary import Pieces, Vocabulary, tokenizer_pieces
from brainview.decoding.language.zero_shot import ZeroShot, zero_shot_accuracy
from brainview.decoding.retrieval import text_scores
from brainview.decoding.vectors import unit_norm
from brainview.errors import UserError

STAGE = "stage2"
CLIP_TEMPERATURE = 0.01  # softmax temperature of zero-shot probabilities (CLIP's logit scale 100)

Embed = Callable[[Sequence[str]], np.ndarray]
Captioner = Callable[[np.ndarray], list[str]]
Query = str | Label


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


# --------------------------------------------------------------------------- the probe


@dataclass
class LanguageProbe:
    """The stage-2 brain↔text space of one bundle, with a text encoder to embed new phrases.

    Built once per bundle (it projects every test trial: run it in a worker); every query after
    that is a few matrix products plus one text embedding. Reads the bundle, never changes it.
    ``pieces`` (a word → its tokenizer pieces) turns on the vocabulary check of every query.
    """

    bundle: object
    embed: Embed
    model: BrainModel = field(default=None)  # type: ignore[assignment]
    pieces: Pieces | None = None

    def __post_init__(self):
        if self.model is None:
            self.model = BrainModel.from_bundle(self.bundle)
        if STAGE not in self.model.stages or not self.model.has_text_projection:
            raise UserError(_no_stage2(self.bundle))
        self.patterns = np.asarray(self.bundle.fmri, dtype=np.float32)
        self.brain_projected = self._project(self.patterns)
        self.image_projected = self.model.project_text(np.asarray(self.bundle.image_embeddings, dtype=np.float32))
        self.vocabulary = Vocabulary.from_captions(self.pieces, self.bundle.captions) if self.pieces else None
        self._embeddings: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, bundle, device: str = "auto") -> LanguageProbe:
        """The probe with the bundle's own text encoder and its tokenizer's vocabulary check (slow: a worker)."""
        encoder = load_text_encoder(bundle, device)
        return cls(bundle, encoder.text_embeddings, pieces=tokenizer_pieces(encoder.retrieval_tokenizer))

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

    def phrase_embedding(self, phrase: Query) -> np.ndarray:
        """A phrase's embedding; of a prompt ensemble (``NAME=P1;P2``) the renormalized mean."""
        return self.label_embeddings([parse_query(phrase)])[0]

    def label_embeddings(self, labels: Sequence[Label]) -> np.ndarray:
        """One embedding per label: its prompts' embeddings averaged and renormalized (CLIP's prompt ensembling)."""
        return np.stack([unit_norm(self.embed_texts(list(label.prompts)).mean(axis=0)) for label in labels])

    def unknown_words(self, texts: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """The words of ``texts`` the text encoder has likely never seen → their pieces (empty without a check)."""
        return self.vocabulary.unknown(texts) if self.vocabulary is not None else {}

    def vocabulary_warning(self, unknown: dict[str, tuple[str, ...]]) -> str | None:
        return self.vocabulary.warning(unknown) if self.vocabulary is not None else None

    # ----------------------------------------------------------------- search

    def search(self, phrase: Query) -> SearchResult:
        query = parse_query(phrase)
        text = self.label_embeddings([query])[0]
        return SearchResult(query.name, text_scores(self.brain_projected, text[None])[:, 0],
                            text_scores(self.image_projected, text[None])[:, 0], query,
                            self.unknown_words(query.prompts))

    # ----------------------------------------------------------------- zero-shot

    def classify(self, labels: Sequence[Label], truth_field: str | None = None) -> ZeroShot:
        embeddings = self.label_embeddings(labels)
        unknown = {label.name: words for label in labels if (words := self.unknown_words(label.prompts))}
        result = ZeroShot(list(labels), text_scores(self.brain_projected, embeddings),
                          text_scores(self.image_projected, embeddings), truth_field, unknown=unknown)
        if truth_field:
            result.truth = truth_indices(self.bundle.trials, labels, truth_field)
            result.accuracy = zero_shot_accuracy(result.brain, result.truth)
            result.image_accuracy = zero_shot_accuracy(result.image, result.truth)
        return result

    # ----------------------------------------------------------------- concept maps

    def gradient(self, pattern: np.ndarray, text: np.ndarray) -> tuple[np.ndarray, float, int]:
        """d score / d pattern in closed form, the score and its winning query token (:func:`.score_gradient`)."""
        return score_gradient(self.model, STAGE, pattern, text)

    @staticmethod
    def _queries(phrase: Query, versus: Sequence[Query]) -> tuple[Label, ...]:
        """The phrase's query, then its alternatives'."""
        query, alternatives = parse_query(phrase), [parse_query(v) for v in versus]
        if any(a.name == query.name or a.prompts == query.prompts for a in alternatives):
            raise UserError(f"{query.name!r} is among its own alternatives")
        return (query, *alternatives)

    @staticmethod
    def _measure(projected: np.ndarray, texts: np.ndarray) -> np.ndarray:
        """Per trial: the phrase's score, or with alternatives its zero-shot probability among them."""
        scores = text_scores(projected, texts).astype(np.float64)
        if len(texts) == 1:
            return scores[:, 0]
        logits = (scores - scores.max(axis=1, keepdims=True)) / CLIP_TEMPERATURE
        return np.exp(logits[:, 0]) / np.exp(logits).sum(axis=1)

    @classmethod
    def _lesion_measure(cls, projected: np.ndarray, texts: np.ndarray) -> np.ndarray:
        """What a lesion is measured by: the phrase's score, or with alternatives its log-odds against
        them, log p / (1 − p). Why not the probability: on the trials that match a phrase best it is
        1.000 to three decimals, so a lesion that halves the phrase's margin shows no drop at all."""
        if len(texts) == 1:
            return cls._measure(projected, texts)
        logits = text_scores(projected, texts).astype(np.float64) / CLIP_TEMPERATURE
        others = logits[:, 1:]
        top = others.max(axis=1)
        return logits[:, 0] - top - np.log(np.exp(others - top[:, None]).sum(axis=1))

    def concept_map(self, phrase: Query, trial: int | None = None, versus: Sequence[Query] = ()) -> ConceptMap:
        """Gradient × input on one trial, or (``trial`` None) the activation pattern over the test trials.

        The trial-independent map is Haufe et al.'s (2014) pattern for one decoded quantity:
        cov(voxel, quantity) / sd(quantity) over the test trials, the voxel's activation (in the
        pattern's units, z) that goes with one standard deviation of it. Unlike the raw decoder
        weights it says where the phrase's content is *in the data*. The quantity is the phrase's
        score, or with ``versus`` its zero-shot probability against those alternatives (softmax
        at CLIP's temperature): where the decoder tells the phrase *from the alternatives*, which
        leaves out what they share. The phrase and each alternative may be prompt ensembles.
        """
        queries = self._queries(phrase, versus)
        texts = self.label_embeddings(queries)
        unknown = self.unknown_words([p for q in queries for p in q.prompts])
        name, versus_names = queries[0].name, tuple(q.name for q in queries[1:])
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
            return ConceptMap(name, (grad * x).astype(np.float32), "gradient×input", trial, versus_names, queries,
                              unknown)
        values = haufe_pattern(self.patterns, self._measure(self.brain_projected, texts))
        return ConceptMap(name, values.astype(np.float32), "covariance", None, versus_names, queries, unknown)

    def lesion(self, concept: ConceptMap, fraction: float = DEFAULT_LESION, *, draws: int = RANDOM_DRAWS,
               seed: int = 0, captioner: Captioner | None = None, captions_missing: str | None = None) -> LesionCheck:
        """Silence the map's top ``fraction`` of voxels, and as a control as many random voxels (``draws`` times).

        Measured (:meth:`_lesion_measure`: the phrase's score, or its log-odds against the map's
        alternatives) on the map's trial, or for a trial-independent map on the best-matching tenth
        of the trials (the trials where the phrase is there to lose). With ``captioner`` (stage-2
        tokens → captions), that trial (or the best match) is captioned intact, lesioned, and with
        the first random lesion.
        """
        texts = self.label_embeddings(concept.queries or self._queries(concept.phrase, concept.versus))
        if concept.trial is not None:
            trials = np.array([concept.trial])
        else:
            order = np.argsort(-self._lesion_measure(self.brain_projected, texts), kind="stable")
            trials = order[:max(1, int(round(MATCHING_SHARE * len(order))))]
        top = concept.top_voxels(fraction)
        patterns = self.patterns[trials]

        def measured(voxels) -> float:
            silenced = patterns if voxels is None else silence_many(patterns, voxels)
            return float(self._lesion_measure(self._project(silenced), texts).mean())

        rng = np.random.default_rng(seed)
        random_sets = [rng.choice(self.patterns.shape[1], size=top.size, replace=False) for _ in range(draws)]
        check = LesionCheck(fraction, int(top.size), trials, measured(None), measured(top),
                            np.array([measured(voxels) for voxels in random_sets]),
                            caption_trial=int(trials[0]), captions_missing=captions_missing,
                            measure="log-odds" if concept.versus else "score")
        if captioner is not None:
            x = self.patterns[trials[0]]
            variants = np.stack([x, silence_many(x[None], top)[0], silence_many(x[None], random_sets[0])[0]])
            tokens = self.model.predict(variants, stage=STAGE)
            check.caption_before, check.caption_after, check.caption_random = captioner(tokens)
        return check
