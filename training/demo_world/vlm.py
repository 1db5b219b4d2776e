"""Tiny BLIP-2 models of the demo world, trained here on the scenes, BLIP-2 style.

1. Tokenizer: byte-level BPE trained with ``tokenizers`` on the training captions
   (:func:`brainview.decoding.tiny_vlm.train_tokenizer`).
2. Image encoder pre-training: BLIP-2 does not train its image encoder; it starts from a
   pre-trained one (EVA-CLIP / CLIP ViT; BLIP-1 from an ImageNet ViT) and keeps it frozen. The
   demo's ``Blip2VisionModel`` is pre-trained the ImageNet way, as a classifier of what each image
   shows (object kind, place, colour: linear heads on the mean patch feature, thrown away after),
   on the training scenes plus ``pretrain_scenes`` further scenes of the same seeded stream
   (:func:`training.demo_world.scenes.scenes_after_splits`, disjoint from all three splits), then
   frozen for the two BLIP-2 stages. Why: trained from scratch by BLIP-2's own objectives on
   these scenes, the vision model learned colour and place, which every caption names, but hardly
   object kind (measured on the 300 test scenes from true image tokens: kind named in 24-31% of
   captions, faces in 0-7 of 55, whatever the data size, width, patch size or hard negatives tried);
   pre-trained as a classifier, the same model names the kind in 84% (faces 48/55), METEOR 0.79.
3. Representation stage: the Q-Former (32 learned queries) and text path of a
   ``Blip2ForImageTextRetrieval`` are trained from scratch on the frozen image features with
   BLIP-2's image-text contrastive (ITC) loss: query tokens -> ``vision_projection``, caption ->
   Q-Former text path -> ``text_projection`` of the first token, both L2-normalized, score =
   maximum over queries, symmetric in-batch InfoNCE with a learnable temperature (BLIP-2 starts at
   0.07). This is the computation of ``Blip2Adapter.text_embeddings`` / ``project_image_tokens``.
   ITM is left out: on this budget it buys nothing the captioner needs.
4. Generative stage: a ``Blip2ForConditionalGeneration`` of the same vision / Q-Former
   configuration starts from the frozen vision model and the stage-3 Q-Former and queries (state
   dicts copied, :func:`copy_representation`), and is trained with the captioning LM loss on the
   sequence the adapter generates from, ``<image>×32, BOS, caption, EOS``, with the projected
   query tokens in place of the image tokens. The Q-Former, the queries, ``language_projection``
   and the OPT language model are trained; the image features are computed once. The captioner's
   Q-Former outputs are the stage-1 regression targets, so the captioner captions from exactly
   the tokens the brain model predicts.

5. Answer stage (:func:`train_answer_stage`): language projection and OPT only, on captions mixed
   with question-answer pairs about the same scenes (:mod:`training.demo_world.questions`) in
   BLIP-2's prompt ``Question: {q} Answer:``, some after earlier turns; the vision model, queries
   and Q-Former stay frozen, so the query tokens are those of stage 4.

The vision model's patch embedding starts from whitened principal components of training
patches (:func:`whiten_patch_embedding`).

The captioner also learns from slightly perturbed query tokens (Gaussian noise on the Q-Former
output before ``language_projection``, a fraction ``token_noise`` of each channel's spread across
images): brain-predicted tokens are always noisy, and a captioner that has only seen exact
tokens degrades abruptly off them.

Plain torch loops rather than Lightning: three short fixed schedules over different models and
parameter groups, no validation-based selection (validation is reported only), and on two
shared CPU cores Lightning's per-step bookkeeping is a measurable share of a short step.

Threads: training runs with ONE torch thread (``THREADS``, restored afterwards). On the shared
2-core build machine under load (load average ~8), the same training step took 1.0 s with one
thread and 6-9 s with two (OpenMP threads waiting on each other); one thread also keeps the
floating-point reduction order, and so the trained weights, independent of the machine.
Everything is seeded.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from brainview.decoding.questions import MAX_HISTORY_TURNS, Turn, question_prompt
from brainview.decoding.tiny_vlm import IMAGE_TOKEN, build_tiny_blip2, save_tiny_blip2, train_tokenizer
from training.demo_world.questions import scene_question, types_for
from training.demo_world.scenes import COLOURS, KINDS, PLACES, SceneSet, scenes_after_splits

N_QUERY = 32
THREADS = 1  # see the module docstring


@dataclass(frozen=True)
class VlmRecipe:
    """Model sizes (``tiny_blip2_configs`` arguments) and the three training schedules."""

    model: dict = field(default_factory=dict)
    pretrain_scenes: int = 0  # scenes beyond the training split for the image encoder's pre-training
    pretrain_epochs: int = 1
    pretrain_batch: int = 32
    pretrain_lr: float = 1e-3
    itc_epochs: int = 1
    itc_batch: int = 64
    itc_lr: float = 1e-3
    lm_epochs: int = 1
    lm_batch: int = 64
    lm_lr: float = 1e-3
    token_noise: float = 0.1
    qa_epochs: int = 1  # the answer stage (captions and question-answer pairs; 0: none)
    qa_batch: int = 32
    qa_lr: float = 1e-3
    qa_caption_share: float = 0.3  # fraction of the answer stage's examples that are captions
    qa_dialogue_share: float = 0.25  # fraction of its questions asked after earlier turns
    shift: int = 3  # random translation (pixels) of the training images in pre-training and ITC


RECIPES = {
    "full": VlmRecipe(
        model=dict(image_size=64, patch_size=8, vision_hidden=64, vision_layers=2, query_dim=64,
                   qformer_layers=2, lm_hidden=96, lm_layers=2, num_heads=4, text_dim=64, init_range=0.02),
        pretrain_scenes=18_000, pretrain_epochs=6,
        itc_epochs=8, itc_batch=32, itc_lr=1e-3, lm_epochs=15, lm_batch=32, lm_lr=1e-3,
        qa_epochs=10, qa_batch=32, qa_lr=1e-3),
    "small": VlmRecipe(
        model=dict(image_size=64, patch_size=16, vision_hidden=32, vision_layers=1, query_dim=32,
                   qformer_layers=1, lm_hidden=32, lm_layers=1, num_heads=2, text_dim=16, init_range=0.02),
        itc_epochs=1, itc_batch=32, lm_epochs=1, lm_batch=32),
}


def _log(message: str) -> None:
    print(f"[vlm] {message}", file=sys.stderr, flush=True)


def _pixel_values(model, tokenizer, images: np.ndarray) -> torch.Tensor:
    """The saved processor's preprocessing (as ``Blip2Adapter`` applies it), for all images at once."""
    from brainview.decoding.tiny_vlm import _processor

    size = model.config.vision_config.image_size
    processor = _processor(tokenizer, size, model.config.num_query_tokens).image_processor
    return processor(list(images), return_tensors="pt", input_data_format="channels_last")["pixel_values"]


def _shifted(pixels: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Random translation by up to ``shift`` pixels (edge-replicated), one offset per image."""
    if shift <= 0:
        return pixels
    n, _, h, w = pixels.shape
    padded = F.pad(pixels, (shift, shift, shift, shift), mode="replicate")
    dy, dx = (torch.randint(0, 2 * shift + 1, (2, n), generator=generator)).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def whiten_patch_embedding(vision_model, pixels: torch.Tensor, eps: float = 1e-2) -> None:
    """Start the patch embedding as the whitened principal components of training patches.

    Each output channel is one principal direction of the patches (mean removed, unit variance):
    colour and coarse shape are available from the first step. On the scenes this made a linear
    probe of the vision model learn the object kind about twice as fast (validation accuracy
    0.50 against 0.31 after 6 epochs), the same effect that patch whitening has in fast CIFAR-10
    training recipes.
    """
    conv = vision_model.embeddings.patch_embedding
    size = conv.kernel_size[0]
    patches = F.unfold(pixels[:512], kernel_size=size, stride=size).transpose(1, 2).reshape(-1, 3 * size * size)
    mean = patches.mean(0)
    values, vectors = torch.linalg.eigh(torch.cov((patches - mean).T))
    top = min(conv.out_channels, len(values))
    weight = torch.zeros(conv.out_channels, patches.shape[1])
    weight[:top] = (vectors[:, -top:].flip(1) / torch.sqrt(values[-top:].flip(0) + eps)).T
    with torch.no_grad():
        conv.weight.copy_(weight.reshape(conv.weight.shape))
        conv.bias.copy_(-(weight @ mean))


def _query_output(model, image_embeds: torch.Tensor) -> torch.Tensor:
    """Q-Former over the learned queries (the adapter's ``_qformer_query_output`` after the vision model)."""
    mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long)
    queries = model.query_tokens.expand(len(image_embeds), -1, -1)
    return model.qformer(query_embeds=queries, encoder_hidden_states=image_embeds, encoder_attention_mask=mask,
                         return_dict=True).last_hidden_state


def _text_features(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """ITC text side (``Blip2Adapter.text_embeddings``): Q-Former text path, first token, projected, normalized."""
    out = model.qformer(query_embeds=model.embeddings(input_ids=input_ids), query_length=0,
                        attention_mask=attention_mask, return_dict=True).last_hidden_state
    return F.normalize(model.text_projection(out[:, 0]), dim=-1)


def _itc_scores(model, image_embeds, input_ids, attention_mask) -> torch.Tensor:
    image_feats = F.normalize(model.vision_projection(_query_output(model, image_embeds)), dim=-1)
    text_feats = _text_features(model, input_ids, attention_mask)
    return torch.einsum("bqt,mt->bmq", image_feats, text_feats).amax(dim=-1)


def _cosine_schedule(optimizer, total_steps: int, warmup: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total_steps - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class _Schedule:
    """AdamW with warm-up and cosine decay over ``epochs`` of shuffled mini-batches, gradients clipped to 1."""

    def __init__(self, params: list, lr: float, n_items: int, batch: int, epochs: int, generator: torch.Generator):
        self.params = params
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
        self.n_items, self.batch, self.generator = n_items, min(batch, n_items), generator
        self.steps_per_epoch = n_items // self.batch
        total = self.steps_per_epoch * epochs
        self.scheduler = _cosine_schedule(self.optimizer, total, warmup=max(1, total // 20))

    def epoch_batches(self) -> list[torch.Tensor]:
        """The index batches of one epoch (a fresh shuffle; a last partial batch is dropped)."""
        order = torch.randperm(self.n_items, generator=self.generator)
        return [order[step * self.batch:(step + 1) * self.batch] for step in range(self.steps_per_epoch)]

    def step(self, loss: torch.Tensor) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.scheduler.step()
        return loss.item()


def _encode(tokenizer, texts: list[str], add_eos: bool) -> tuple[torch.Tensor, torch.Tensor]:
    enc = tokenizer(texts, add_special_tokens=True)["input_ids"]
    if add_eos:
        enc = [ids + [tokenizer.eos_token_id] for ids in enc]
    width = max(len(ids) for ids in enc)
    ids = torch.full((len(enc), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(enc), width), dtype=torch.long)
    for i, row in enumerate(enc):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    return ids, mask


def _pick_captions(captions: list[list[str]], index: torch.Tensor, generator: torch.Generator) -> list[str]:
    choice = torch.randint(0, 5, (len(index),), generator=generator).tolist()
    return [captions[i][c % len(captions[i])] for i, c in zip(index.tolist(), choice)]


def image_labels(scenes: SceneSet) -> torch.Tensor:
    """(n, 3) class indices of what each image shows: object kind, place, colour."""
    colours = list(COLOURS)
    return torch.tensor([[KINDS.index(a["kind"]), PLACES.index(a["place"]), colours.index(a["colour"])]
                         for a in scenes.attributes])


#: the columns of :func:`image_labels` and their number of classes
LABEL_CLASSES = {"kind": len(KINDS), "place": len(PLACES), "colour": len(COLOURS)}


def pretrain_image_encoder(vision_model, pixels: torch.Tensor, labels: torch.Tensor, recipe: VlmRecipe,
                           generator: torch.Generator, val: tuple[torch.Tensor, torch.Tensor] | None = None
                           ) -> dict[str, float]:
    """Train the vision model as a classifier of ``labels`` (one linear head per column, on the mean
    patch feature, discarded afterwards), then freeze it: the frozen pre-trained encoder of BLIP-2.

    Returns the last epoch's accuracy per label column on ``val`` (empty without ``val``).
    """
    heads = torch.nn.ModuleList(torch.nn.Linear(vision_model.config.hidden_size, n) for n in LABEL_CLASSES.values())

    def logits(images):
        features = vision_model(pixel_values=images).last_hidden_state.mean(dim=1)
        return [head(features) for head in heads]

    vision_model.train()
    schedule = _Schedule(list(vision_model.parameters()) + list(heads.parameters()), recipe.pretrain_lr,
                         len(pixels), recipe.pretrain_batch, recipe.pretrain_epochs, generator)
    for epoch in range(recipe.pretrain_epochs):
        start, losses = time.perf_counter(), []
        for index in schedule.epoch_batches():
            outputs = logits(_shifted(pixels[index], recipe.shift, generator))
            losses.append(schedule.step(sum(F.cross_entropy(out, labels[index, j]) for j, out in enumerate(outputs))))
        report, accuracy = "", {}
        if val is not None:
            vision_model.eval()
            with torch.no_grad():
                hits = [float((out.argmax(1) == val[1][:, j]).float().mean()) for j, out in enumerate(logits(val[0]))]
            vision_model.train()
            accuracy = dict(zip(LABEL_CLASSES, hits))
            report = ", val accuracy " + " ".join(f"{name} {value:.2f}" for name, value in accuracy.items())
        _log(f"image encoder epoch {epoch + 1}/{recipe.pretrain_epochs}: loss {np.mean(losses):.3f}{report} "
             f"({time.perf_counter() - start:.0f} s)")
    vision_model.eval()
    vision_model.requires_grad_(False)
    return accuracy


def train_retrieval_stage(model, tokenizer, pixels: torch.Tensor, captions: list[list[str]], recipe: VlmRecipe,
                          generator: torch.Generator, val: tuple[torch.Tensor, list[list[str]]] | None = None):
    """Q-Former + text path of ``Blip2ForImageTextRetrieval`` with the ITC loss; the vision model stays frozen."""
    model.train()
    model.vision_model.requires_grad_(False)
    log_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    params = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("itm_head")]
    params.append(log_scale)
    schedule = _Schedule(params, recipe.itc_lr, len(pixels), recipe.itc_batch, recipe.itc_epochs, generator)
    for epoch in range(recipe.itc_epochs):
        start, losses = time.perf_counter(), []
        for index in schedule.epoch_batches():
            ids, mask = _encode(tokenizer, _pick_captions(captions, index, generator), add_eos=False)
            with torch.no_grad():
                image_embeds = model.vision_model(pixel_values=_shifted(pixels[index], recipe.shift, generator)
                                                  ).last_hidden_state
            logits = _itc_scores(model, image_embeds, ids, mask) * log_scale.exp().clamp(max=100)
            target = torch.arange(len(index))
            losses.append(schedule.step(0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))))
        report = ""
        if val is not None:
            report = f", val image->text top-1 (5-way captions of {len(val[0])} images) {_itc_val_top1(model, tokenizer, *val):.3f}"
        _log(f"ITC epoch {epoch + 1}/{recipe.itc_epochs}: loss {np.mean(losses):.3f}{report} "
             f"({time.perf_counter() - start:.0f} s)")
    model.eval()


@torch.no_grad()
def _itc_val_top1(model, tokenizer, pixels, captions) -> float:
    """Image -> text top-1 among the first captions of the validation images."""
    was_training = model.training
    model.eval()
    ids, mask = _encode(tokenizer, [c[0] for c in captions], add_eos=False)
    scores = _itc_scores(model, model.vision_model(pixel_values=pixels).last_hidden_state, ids, mask)
    model.train(was_training)
    return float((scores.argmax(1) == torch.arange(len(scores))).float().mean())


def copy_representation(retrieval, captioner) -> None:
    """Vision model, queries and the Q-Former's query path from the retrieval model into the captioner."""
    captioner.vision_model.load_state_dict(retrieval.vision_model.state_dict())
    with torch.no_grad():
        captioner.query_tokens.copy_(retrieval.query_tokens)
    missing, _unused_text_path = captioner.qformer.load_state_dict(retrieval.qformer.state_dict(), strict=False)
    if missing:
        raise RuntimeError(f"captioner Q-Former weights not in the retrieval Q-Former: {missing[:3]}")


def _lm_batch(model, tokenizer, query_output: torch.Tensor, targets: list[str], prompts: list[str] | None = None):
    """Inputs and labels for ``<image>×n_query, BOS, prompt, target, EOS`` with projected queries
    scattered in; the loss covers the target and EOS only. Without prompts: ``BOS, caption, EOS``."""
    prompts = prompts or [""] * len(targets)
    texts = [f"{p} {t}" if p else t for p, t in zip(prompts, targets)]
    ids, mask = _encode(tokenizer, texts, add_eos=True)
    n, n_query = len(texts), query_output.shape[1]
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    input_ids = torch.cat([torch.full((n, n_query), image_id, dtype=torch.long), ids], dim=1)
    attention = torch.cat([torch.ones((n, n_query), dtype=torch.long), mask], dim=1)
    labels = input_ids.masked_fill(attention == 0, -100)
    prompt_lengths = [len(tokenizer(p, add_special_tokens=True)["input_ids"]) for p in prompts]  # with BOS
    for row, length in enumerate(prompt_lengths):
        labels[row, :n_query + length] = -100  # predict the target and EOS, not the image slots, BOS or prompt
    embeds = model.get_input_embeddings()(input_ids)
    projected = model.language_projection(query_output).to(embeds.dtype)
    slots = (input_ids == image_id).unsqueeze(-1).expand_as(embeds)
    return embeds.masked_scatter(slots, projected), attention, labels


def train_caption_stage(model, tokenizer, pixels: torch.Tensor, captions: list[list[str]], recipe: VlmRecipe,
                        generator: torch.Generator):
    """Q-Former, queries, language projection and OPT with the captioning loss (vision model frozen)."""
    model.train()
    model.vision_model.requires_grad_(False)
    features = _vision_features(model, pixels)
    schedule = _Schedule([p for p in model.parameters() if p.requires_grad], recipe.lm_lr, len(pixels),
                         recipe.lm_batch, recipe.lm_epochs, generator)
    with torch.no_grad():
        spread = _query_output(model, features[:256]).std(dim=0, keepdim=True)
    for epoch in range(recipe.lm_epochs):
        start, losses = time.perf_counter(), []
        for index in schedule.epoch_batches():
            query_output = _query_output(model, features[index])
            noise = torch.randn(query_output.shape, generator=generator) * spread * recipe.token_noise
            embeds, attention, labels = _lm_batch(model, tokenizer, query_output + noise,
                                                  _pick_captions(captions, index, generator))
            loss = model.language_model(inputs_embeds=embeds, attention_mask=attention, labels=labels).loss
            losses.append(schedule.step(loss))
        _log(f"caption epoch {epoch + 1}/{recipe.lm_epochs}: loss {np.mean(losses):.3f} "
             f"({time.perf_counter() - start:.0f} s)")
    model.eval()


def _answer_examples(scenes: SceneSet, index: list[int], recipe: VlmRecipe, rng: np.random.Generator
                     ) -> tuple[list[str], list[str]]:
    """(prompts, targets) for the images ``index``: a caption (empty prompt) or a question of a random
    type in a random phrasing, some after one or two earlier turns about the same scene."""
    prompts, targets = [], []
    for i in index:
        attrs = scenes.attributes[i]
        if rng.random() < recipe.qa_caption_share:
            captions = scenes.captions[i]
            prompts.append("")
            targets.append(captions[int(rng.integers(len(captions)))])
            continue
        kinds = types_for(attrs)
        order = [kinds[j] for j in rng.permutation(len(kinds))]
        n_before = int(rng.integers(1, 3)) if rng.random() < recipe.qa_dialogue_share else 0
        asked = [scene_question(kind, attrs, rng) for kind in order[:n_before + 1]]
        history = [Turn(q["question"], q["answers"][0]) for q in asked[:-1]]
        prompts.append(question_prompt(asked[-1]["question"], history, max_turns=MAX_HISTORY_TURNS))
        targets.append(asked[-1]["answers"][0])
    return prompts, targets


def train_answer_stage(model, tokenizer, pixels: torch.Tensor, scenes: SceneSet, recipe: VlmRecipe, seed: int):
    """Language projection and OPT on captions mixed with question-answer pairs about the same scenes.

    The vision model, the queries and the Q-Former stay frozen, so the query tokens (the brain
    model's targets) and everything fitted to them are those of the caption stage. The stage draws
    from its own seeded streams, so its result depends only on the captioner it starts from.
    """
    model.train()
    trained = [model.language_projection, model.language_model]
    model.requires_grad_(False)
    for part in trained:
        part.requires_grad_(True)
    generator = torch.Generator().manual_seed(seed + 1212)
    rng = np.random.default_rng([seed, 1212])
    with torch.no_grad():
        query_output = _query_output(model, _vision_features(model, pixels))
    spread = query_output[:256].std(dim=0, keepdim=True)
    schedule = _Schedule([p for part in trained for p in part.parameters()], recipe.qa_lr, len(pixels),
                         recipe.qa_batch, recipe.qa_epochs, generator)
    for epoch in range(recipe.qa_epochs):
        start, losses = time.perf_counter(), []
        for index in schedule.epoch_batches():
            noise = torch.randn(query_output[index].shape, generator=generator) * spread * recipe.token_noise
            prompts, targets = _answer_examples(scenes, index.tolist(), recipe, rng)
            embeds, attention, labels = _lm_batch(model, tokenizer, query_output[index] + noise, targets, prompts)
            loss = model.language_model(inputs_embeds=embeds, attention_mask=attention, labels=labels).loss
            losses.append(schedule.step(loss))
        _log(f"answer epoch {epoch + 1}/{recipe.qa_epochs}: loss {np.mean(losses):.3f} "
             f"({time.perf_counter() - start:.0f} s)")
    model.requires_grad_(True)
    model.vision_model.requires_grad_(False)
    model.eval()


@torch.no_grad()
def _vision_features(model, pixels: torch.Tensor, batch: int = 256) -> torch.Tensor:
    return torch.cat([model.vision_model(pixel_values=pixels[i:i + batch]).last_hidden_state
                      for i in range(0, len(pixels), batch)])


def _save_quietly(out_dir: Path, tokenizer, captioner, retrieval) -> dict[str, Path]:
    """``save_tiny_blip2`` without transformers' per-shard progress bars."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return save_tiny_blip2(out_dir, tokenizer, captioner=captioner, retrieval=retrieval)
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def _with_pretraining_scenes(train: SceneSet, n: int, seed: int, size: str) -> SceneSet:
    """The training scenes plus ``n`` further scenes of the stream (the image encoder's corpus)."""
    if n == 0:
        return train
    extra = scenes_after_splits(n, seed, size)
    _log(f"{n} further scenes for the image encoder's pre-training")
    return SceneSet(np.concatenate([train.images, extra.images]), train.captions + extra.captions,
                    train.attributes + extra.attributes)


def train_demo_vlm(train: SceneSet, val: SceneSet, out_dir: Path, seed: int, size: str = "full") -> dict[str, Path]:
    """Train the tokenizer, the retrieval model and the captioner; save them under ``out_dir``.

    Returns ``{"captioner": Path, "retrieval": Path}``, folders written with ``save_pretrained``
    (model + ``Blip2Processor``) that ``Blip2Adapter.load`` opens like real checkpoints. ``val``
    is only reported on (encoder accuracy and ITC top-1 per epoch), never used for fitting. ``size``: "full" (the
    demo bundle) or "small" (seconds; for tests of the reduced build).
    """
    if size not in RECIPES:
        raise ValueError(f"size must be one of {sorted(RECIPES)}, got {size!r}")
    recipe = RECIPES[size]
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        started = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            tokenizer = train_tokenizer(c for caps in train.captions for c in caps)
            captioner, retrieval = build_tiny_blip2(tokenizer, seed=seed, n_query=N_QUERY, **recipe.model)
            _log(f"{size}: tokenizer of {len(tokenizer)} tokens; {len(train)} training images; "
                 f"retrieval model {sum(p.numel() for p in retrieval.parameters()) / 1e6:.2f} M parameters")
            corpus = _with_pretraining_scenes(train, recipe.pretrain_scenes, seed, size)
            corpus_pixels = _pixel_values(retrieval, tokenizer, corpus.images)
            pixels = corpus_pixels[:len(train)].clone()  # the corpus starts with the training scenes
            val_pixels = _pixel_values(retrieval, tokenizer, val.images)
            whiten_patch_embedding(retrieval.vision_model, corpus_pixels)
            pretrain_image_encoder(retrieval.vision_model, corpus_pixels, image_labels(corpus), recipe, generator,
                                   val=(val_pixels, image_labels(val)))
            del corpus_pixels
            train_retrieval_stage(retrieval, tokenizer, pixels, train.captions, recipe, generator,
                                  val=(val_pixels, val.captions))
            copy_representation(retrieval, captioner)
            train_caption_stage(captioner, tokenizer, pixels, train.captions, recipe, generator)
            if recipe.qa_epochs:
                train_answer_stage(captioner, tokenizer, pixels, train, recipe, seed)
            paths = _save_quietly(Path(out_dir), tokenizer, captioner, retrieval)
        _log(f"{size}: trained and saved in {time.perf_counter() - started:.0f} s")
        return paths
    finally:
        torch.set_num_threads(threads)
