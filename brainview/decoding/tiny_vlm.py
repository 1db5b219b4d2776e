"""Tiny BLIP-2-class models of the real ``transformers`` classes, for tests and the demo world.

Nothing here is a mock: the tokenizer is trained with the ``tokenizers`` library and wrapped
in a ``PreTrainedTokenizerFast``; the models are ``Blip2ForConditionalGeneration`` (OPT language
model) and ``Blip2ForImageTextRetrieval`` built from small ``Blip2Config``s; they are saved with
``save_pretrained`` together with a ``Blip2Processor``, so :meth:`Blip2Adapter.load
<brainview.decoding.blip2.Blip2Adapter.load>` reads them through exactly the code that reads
real checkpoints. Hidden sizes are 32-64 and layers 1-2, so a forward pass takes milliseconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import torch

__all__ = [
    "IMAGE_TOKEN",
    "SPECIAL_TOKENS",
    "TinyBlip2Configs",
    "save_tiny_blip2",
    "tiny_blip2_configs",
    "train_tokenizer",
]

PAD, BOS, EOS, UNK, IMAGE_TOKEN = "<pad>", "<s>", "</s>", "<unk>", "<image>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, IMAGE_TOKEN)


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 512, min_frequency: int = 1, model_max_length: int = 128):
    """Train a byte-level BPE tokenizer on ``corpus`` -> ``transformers.PreTrainedTokenizerFast``.

    Special tokens: ``<pad>`` (0), ``<s>`` (1, BOS), ``</s>`` (2, EOS), ``<unk>`` (3) and
    ``<image>`` (4, BLIP-2's image placeholder). Every encoding starts with BOS, which serves as
    the OPT decoder's start token and as the [CLS] token of the Q-Former text side. Byte-level,
    so any text encodes without unknown tokens; the vocabulary is at least 256 + 5.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [str(t) for t in corpus]
    if not texts:
        raise ValueError("train_tokenizer needs a non-empty corpus")
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab_size = max(int(vocab_size), len(alphabet) + len(SPECIAL_TOKENS))
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B:1", special_tokens=[(BOS, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=model_max_length,
        padding_side="right",
    )


class TinyBlip2Configs(NamedTuple):
    captioner: object  # transformers.Blip2Config for Blip2ForConditionalGeneration
    retrieval: object  # transformers.Blip2Config for Blip2ForImageTextRetrieval


def tiny_blip2_configs(
    tokenizer,
    n_query: int = 32,
    image_size: int = 32,
    patch_size: int = 8,
    vision_hidden: int = 32,
    query_dim: int = 32,
    lm_hidden: int = 32,
    text_dim: int = 16,
    vision_layers: int = 1,
    qformer_layers: int = 2,
    lm_layers: int = 2,
    num_heads: int = 2,
    max_text_positions: int = 128,
    init_range: float = 0.2,
) -> TinyBlip2Configs:
    """Small ``Blip2Config``s: one for the captioner (OPT language model), one for retrieval.

    Both use the tokenizer's vocabulary (OPT side and Q-Former text side), its special token
    ids, and ``image_token_index`` = the ``<image>`` token, as current BLIP-2 checkpoints do.
    ``query_dim`` is the Q-Former width, ``text_dim`` the image-text contrastive width.
    ``init_range`` is the std of the random weights (BLIP-2's 0.02 lets almost nothing of the
    image through an untrained Q-Former: query tokens would differ across images ~300x less
    than across queries; at 0.2 the two are comparable, so random models give usable targets).
    """
    from transformers import Blip2Config, OPTConfig

    if image_size % patch_size:
        raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
    vocab = len(tokenizer)
    image_token = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    if image_token is None or image_token == tokenizer.unk_token_id:
        raise ValueError(f"the tokenizer has no {IMAGE_TOKEN} token; build it with train_tokenizer")
    pad, bos, eos = tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id
    if None in (pad, bos, eos):
        raise ValueError("the tokenizer needs pad, bos and eos tokens")

    vision = dict(
        hidden_size=vision_hidden,
        intermediate_size=2 * vision_hidden,
        num_hidden_layers=vision_layers,
        num_attention_heads=num_heads,
        image_size=image_size,
        patch_size=patch_size,
        initializer_range=0.02,  # the BLIP-2 default (1e-10) would make every image look alike
    )
    qformer = dict(
        vocab_size=vocab,
        hidden_size=query_dim,
        num_hidden_layers=qformer_layers,
        num_attention_heads=num_heads,
        intermediate_size=2 * query_dim,
        cross_attention_frequency=1,
        max_position_embeddings=max_text_positions,
        pad_token_id=pad,
        initializer_range=init_range,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )

    def text_config():
        return OPTConfig(
            vocab_size=vocab,
            hidden_size=lm_hidden,
            word_embed_proj_dim=lm_hidden,
            num_hidden_layers=lm_layers,
            ffn_dim=2 * lm_hidden,
            num_attention_heads=num_heads,
            max_position_embeddings=n_query + 2 * max_text_positions,
            pad_token_id=pad,
            bos_token_id=bos,
            eos_token_id=eos,
            dropout=0.0,
            attention_dropout=0.0,
            # untied output layer: a random tied model only copies its last input token
            tie_word_embeddings=False,
        ).to_dict()

    def make(text_input: bool):
        return Blip2Config(
            vision_config=dict(vision),
            # the retrieval Q-Former has BERT-style text layers, as in Salesforce/blip2-itm-vit-g
            qformer_config=dict(qformer, use_qformer_text_input=text_input),
            text_config=text_config(),
            num_query_tokens=n_query,
            image_text_hidden_size=text_dim,
            image_token_index=image_token,
            initializer_range=init_range,
        )

    return TinyBlip2Configs(captioner=make(False), retrieval=make(True))


def _processor(tokenizer, image_size: int, n_query: int):
    from transformers import Blip2Processor

    from brainview.decoding.blip2_loading import blip_image_processor_class

    image_processor = blip_image_processor_class()(size={"height": image_size, "width": image_size})
    return Blip2Processor(image_processor=image_processor, tokenizer=tokenizer, num_query_tokens=n_query)


def _randomize_queries(model, seed: int) -> None:
    # transformers initializes the learned queries to zeros (real checkpoints overwrite them);
    # identical queries would give identical tokens, so draw them as BLIP-2's training does.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.query_tokens.copy_(torch.randn(model.query_tokens.shape, generator=g) * 0.02)


def build_tiny_blip2(tokenizer, seed: int = 0, **config_kwargs):
    """Random-initialized (captioner, retrieval) models, in eval mode, seeded (global RNG untouched)."""
    from transformers import Blip2ForConditionalGeneration, Blip2ForImageTextRetrieval

    configs = tiny_blip2_configs(tokenizer, **config_kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        captioner = Blip2ForConditionalGeneration(configs.captioner).eval()
        retrieval = Blip2ForImageTextRetrieval(configs.retrieval).eval()
    _randomize_queries(captioner, seed)
    _randomize_queries(retrieval, seed + 1)
    return captioner, retrieval


def save_tiny_blip2(
    folder: str | os.PathLike, tokenizer, seed: int = 0, captioner=None, retrieval=None, **config_kwargs
) -> dict[str, Path]:
    """Save tiny models with their ``Blip2Processor`` into ``folder/captioner`` and ``folder/retrieval``.

    Builds random-initialized models (``seed``; ``config_kwargs`` go to :func:`tiny_blip2_configs`)
    unless trained ``captioner`` / ``retrieval`` models are passed in (the demo world trains them
    first). Returns ``{"captioner": Path, "retrieval": Path}``; both load with
    ``Blip2Adapter.load`` exactly like real weights.
    """
    if captioner is None or retrieval is None:
        built_c, built_r = build_tiny_blip2(tokenizer, seed=seed, **config_kwargs)
        captioner = captioner if captioner is not None else built_c
        retrieval = retrieval if retrieval is not None else built_r
    root = Path(folder)
    paths = {"captioner": root / "captioner", "retrieval": root / "retrieval"}
    for name, model in (("captioner", captioner), ("retrieval", retrieval)):
        out = paths[name]
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out)
        cfg = model.config
        _processor(tokenizer, cfg.vision_config.image_size, cfg.num_query_tokens).save_pretrained(out)
    return paths
