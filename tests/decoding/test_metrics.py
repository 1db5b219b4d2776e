"""Caption metrics against the reference libraries, on hand-written captions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from brainview.decoding import metric_resources as R
from brainview.decoding import metrics as M
from brainview.errors import UserError

PREDS = [
    "a dog runs across the grass",
    "a red bus parked on a city street.",
    "two men playing tennis on a court",
    "a plate of food with broccoli and rice",
    "a man riding a wave on top of a surfboard",
    "a cat sitting on a laptop keyboard",
]
REFS = [
    ["A dog is running across the grass.", "a brown puppy runs through a green field", "The dog sprints on a lawn."],
    ["A red double decker bus on the street.", "a bus parked by the side of a road", "Red bus waiting at a stop in the city."],
    ["Two people play tennis.", "a couple of men playing a game of tennis on a clay court"],
    ["A plate with rice, broccoli and chicken.", "food on a white plate with vegetables", "A dinner of rice and greens."],
    ["a surfer rides a large wave", "A man on a surfboard riding a wave in the ocean."],
    ["A kitten sleeping on a sofa.", "a cat lies on a couch", "an orange cat naps on cushions"],
]
UNRELATED = [
    "stock prices fell sharply after the quarterly report",
    "the committee approved the new budget yesterday",
    "quantum entanglement violates bell inequalities",
    "she filed her income taxes online",
    "the violin concerto was composed in 1878",
    "a database index speeds up queries",
]

needs_wordnet = pytest.mark.skipif(R.find_nltk_data()[0] is None, reason="WordNet not installed (scripts/install_resources.sh)")


@pytest.fixture(scope="module")
def report():
    return M.caption_metrics(PREDS, REFS, ["meteor", "rouge1", "rougeL", "sentence"])


def test_nltk_finds_the_corpus():
    """With the folder on nltk's data path, nltk's own lazy loader reads the same WordNet 3.0."""
    root, _ = R.find_nltk_data()
    if root is None:
        pytest.skip("WordNet not installed (scripts/install_resources.sh)")
    import nltk

    if str(root) not in nltk.data.path:
        nltk.data.path.append(str(root))
    from nltk.corpus import wordnet as wn

    assert wn.get_version() == "3.0"
    assert [s.name() for s in wn.synsets("puppy")] == [s.name() for s in R.load_wordnet().synsets("puppy")]
    assert wn.synsets("dog")[0].name() == "dog.n.01"


def test_import_is_light():
    code = "import sys, brainview.decoding.metrics; print([m for m in ('torch', 'nltk', 'transformers', 'sentence_transformers', 'PySide6') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@needs_wordnet
def test_meteor_agrees_with_nltk(report):
    from nltk.tokenize import word_tokenize
    from nltk.translate.meteor_score import meteor_score

    wordnet = R.load_wordnet()  # the same corpus; nltk's lazy loader is checked in test_nltk_finds_the_corpus
    direct = np.array([
        meteor_score([word_tokenize(r, preserve_line=True) for r in refs], word_tokenize(p, preserve_line=True), wordnet=wordnet)
        for p, refs in zip(PREDS, REFS)
    ])
    assert np.abs(report.per_caption["meteor"] - direct).max() < 1e-6
    assert abs(report.means["meteor"] - direct.mean()) < 1e-6
    assert "meteor" not in report.missing


def test_rouge_agrees_with_rouge_score(report):
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)
    for key in ("rouge1", "rougeL"):
        direct = np.array([max(scorer.score(r, p)[key].fmeasure for r in refs) for p, refs in zip(PREDS, REFS)])
        assert np.abs(report.per_caption[key] - direct).max() < 1e-6
        assert abs(report.means[key] - direct.mean()) < 1e-6


def test_sentence_is_cosine_with_mean_reference(report):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(R.sentence_model_path()), device="cpu")
    i = 2
    e = model.encode([PREDS[i]] + REFS[i], normalize_embeddings=True)
    m = e[1:].mean(0)
    expected = float(e[0] @ m / np.linalg.norm(m))
    assert abs(report.per_caption["sentence"][i] - expected) < 1e-5
    assert report.per_caption["sentence"].shape == (len(PREDS),)


def test_perfect_and_unrelated_captions():
    perfect = [refs[0] for refs in REFS]
    wanted = ["rouge1", "rougeL", "sentence"] + (["meteor"] if R.find_nltk_data()[0] else [])
    good = M.caption_metrics(perfect, REFS, wanted)
    bad = M.caption_metrics(UNRELATED, REFS, wanted)
    for m in wanted:
        if m != "sentence":  # rouge and meteor take the best reference: a copy of one scores ~1
            assert good.per_caption[m].min() > 0.99, (m, good.per_caption[m])
        assert bad.means[m] < 0.2, (m, bad.per_caption[m])
        assert good.means[m] > bad.means[m] + 0.6, m
    # sentence similarity compares with the MEAN reference embedding: ~1 only when it is the caption's own
    alone = M.caption_metrics(perfect, [[p] for p in perfect], ["sentence"])
    assert alone.per_caption["sentence"].min() > 0.999
    assert good.means["sentence"] > 0.8


def test_missing_wordnet_is_missing_not_zero(tmp_path, monkeypatch):
    monkeypatch.setenv(R.NLTK_DATA_ENV, str(tmp_path))
    r = M.caption_metrics(PREDS[:2], REFS[:2], ["meteor", "rouge1"])
    assert r.means["meteor"] is None
    assert "meteor" not in r.per_caption
    assert "WordNet" in r.missing["meteor"] and "install_resources.sh" in r.missing["meteor"]
    assert r.means["rouge1"] is not None and "rouge1" not in r.missing
    # the same through the argument, and in the JSON form
    r2 = M.caption_metrics(PREDS[:1], REFS[:1], ["meteor"], nltk_data=tmp_path / "nowhere")
    assert json.loads(json.dumps(r2.to_json()))["means"]["meteor"] is None


def test_clip_without_weights_is_missing(tmp_path):
    r = M.caption_metrics(PREDS[:2], REFS[:2], ["clip_b", "clip_l"],
                          clip_models={"clip_b": str(tmp_path / "no-clip"), "clip_l": "brainview-test/no-such-clip"})
    for m in ("clip_b", "clip_l"):
        assert r.means[m] is None and m not in r.per_caption
        assert "not available locally" in r.missing[m]


def test_default_clip_ids_follow_the_local_cache():
    from huggingface_hub import try_to_load_from_cache

    r = M.caption_metrics(PREDS[:1], REFS[:1], ["clip_b"])
    cached = isinstance(try_to_load_from_cache(R.CLIP_MODELS["clip_b"], "config.json"), str)
    if cached:
        assert isinstance(r.means["clip_b"], float)
    else:
        assert r.means["clip_b"] is None and "clip_b" in r.missing


def _tiny_clip(folder):
    """A random CLIP text tower with a word-level tokenizer, saved like real weights."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, PreTrainedTokenizerFast

    words = sorted({w for s in PREDS + [r for rs in REFS for r in rs] for w in s.lower().replace(".", " ").replace(",", " ").split()})
    vocab = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3, **{w: i + 4 for i, w in enumerate(words)}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>", eos_token="<eos>")
    cfg = CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, projection_dim=16,
                         pad_token_id=0, bos_token_id=2, eos_token_id=3)
    CLIPTextModelWithProjection(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)


def test_clip_from_local_folder(tmp_path):
    folder = tmp_path / "tiny-clip"
    _tiny_clip(folder)
    r = M.caption_metrics(PREDS, REFS, ["clip_b"], clip_models={"clip_b": str(folder)})
    assert "clip_b" not in r.missing
    assert r.per_caption["clip_b"].shape == (len(PREDS),)
    assert np.all(np.abs(r.per_caption["clip_b"]) <= 1 + 1e-9)
    same = M.caption_metrics([REFS[0][0]], [[REFS[0][0]]], ["clip_b"], clip_models={"clip_b": str(folder)})
    assert same.means["clip_b"] == pytest.approx(1.0, abs=1e-5)


def test_coco_metrics():
    perfect = [refs[0] for refs in REFS]
    r = M.caption_metrics(perfect, REFS, list(M.COCO_METRICS))
    for m in ("bleu1", "bleu2", "bleu3", "bleu4"):
        assert r.means[m] == pytest.approx(1.0, abs=1e-6)
        assert r.per_caption[m].shape == (len(REFS),)
    assert r.means["cider"] > 1.0
    if shutil.which("java"):
        assert r.means["meteor15"] > 0.9 and r.per_caption["meteor15"].shape == (len(REFS),)
    else:
        assert r.means["meteor15"] is None and "Java" in r.missing["meteor15"]


def test_coco_tokenization():
    assert M.coco_tokenize("A Dog's ball, on the grass.") == "a dog 's ball on the grass"


def test_meteor15_without_java_is_missing(monkeypatch):
    monkeypatch.setattr(M, "_meteor15", None)
    monkeypatch.setattr(M.shutil, "which", lambda name: None)
    r = M.caption_metrics(PREDS[:2], REFS[:2], ["meteor15", "bleu1"])
    assert r.means["meteor15"] is None and "Java" in r.missing["meteor15"]
    assert r.means["bleu1"] is not None


def test_bad_input_is_a_user_error():
    with pytest.raises(UserError):
        M.caption_metrics(["a"], [["b"], ["c"]])
    with pytest.raises(UserError):
        M.caption_metrics(["a"], [[]])
    with pytest.raises(UserError):
        M.caption_metrics(["a"], [["b"]], ["bleu"])
    with pytest.raises(UserError):
        M.caption_metrics([], [])


@needs_wordnet
def test_wordnet_is_only_used_under_its_lock(monkeypatch):
    """nltk's WordNet reader loads lazily from shared file handles and is not thread-safe: overlapping
    scoring workers on a cold reader fail (WordNetError, AttributeError) about one run in three here, or
    score wrongly. Every use of it must hold ``_wordnet_lock``; this reader checks that on each call."""
    real = R.load_wordnet()
    used_unlocked, calls = [], []

    class Watched:
        def __getattr__(self, name):
            attr = getattr(real, name)
            if not callable(attr):
                return attr

            def call(*args, **kwargs):
                calls.append(name)
                if not R.wordnet_lock.locked():
                    used_unlocked.append(name)
                return attr(*args, **kwargs)
            return call

    monkeypatch.setattr(M, "load_wordnet", lambda nltk_data=None: Watched())
    report = M.caption_metrics(["a man rides a horse on the beach"], [["a person riding a pony by the sea"]],
                               metrics=["meteor"])
    assert calls and not used_unlocked, used_unlocked
    assert report.means["meteor"] > 0


@needs_wordnet
def test_concurrent_scoring_agrees_with_serial_scoring():
    import threading

    predictions = ["a man rides a horse on the beach", "two dogs play with a ball in the grass"]
    references = [["a person riding a pony by the sea"], ["puppies playing with a toy on a lawn"]]
    expected = M.caption_metrics(predictions, references, metrics=["meteor"]).per_caption["meteor"]
    results, errors = [], []

    def score():
        try:
            results.append(M.caption_metrics(predictions, references, metrics=["meteor"]).per_caption["meteor"])
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=score) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4 and all(np.array_equal(r, expected) for r in results)


def test_time_left_comes_from_the_pace_of_the_phase():
    from brainview.decoding.progress import time_left

    assert time_left(0.5, 3, 100) == ""  # too early for a pace
    assert time_left(10.0, 0, 100) == ""
    assert time_left(10.0, 10, 20) == "about 20 s left"
    assert time_left(60.0, 10, 100) == "about 10 min left"
