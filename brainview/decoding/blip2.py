"""BLIP-2 adapter: the four paths brainview needs from the real ``transformers`` BLIP-2 classes.

* ``image_query_tokens``: images -> vision model -> Q-Former query output of the *captioner*
  (``Blip2ForConditionalGeneration``), i.e. before ``language_projection``. These
  (n_query, query_dim) tokens are the stage-1 regression targets (DESIGN.md §3/§4).
* ``caption``: (predicted) query tokens -> ``language_projection`` -> prepended to the prompt's
  token embeddings -> the language model's own ``generate`` (greedy or beam), exactly as
  ``Blip2ForConditionalGeneration.generate`` does after its Q-Former step.
* ``text_embeddings``: captions -> the retrieval model's (``Blip2ForImageTextRetrieval``) Q-Former
  text path (text only, no queries) -> ``text_projection`` of the first ([CLS]) token ->
  L2-normalized: the text side of BLIP-2's image-text contrastive (ITC) score.
* ``project_image_tokens``: query tokens -> the retrieval model's ``vision_projection`` ->
  L2-normalized per token: the image side of ITC.

About the two models: the retrieval model has its own vision model and Q-Former, so its query
tokens live in a different space from the captioner's. brainview regresses the *captioner's*
tokens from fMRI (stage 1) and learns its own stage-2 projection (query_dim -> text_dim) onto
the retrieval model's text space; it does not feed captioner tokens through the retrieval model's
``vision_projection``. ``project_image_tokens`` and ``retrieval_query_tokens`` exist for the
image-text alignment baseline and for the extract steps (NSD, demo world), where the retrieval
model's own image tokens are needed.

Models are loaded from a local folder (saved with ``save_pretrained``) or from a Hugging Face
model id that is already in the local cache; brainview never downloads weights. The same code
path loads the tiny random models of :mod:`brainview.decoding.tiny_vlm` and the real checkpoints.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from brainview.decoding.blip2_loading import (PARTS, blip_image_processor_class, load_caption_parts, load_model,
                                             load_processor, read_config, refuse_custom_code,
                                             resolve_model_reference)
from brainview.decoding.cpu_precision import apply_cpu_precision, check_cpu_precision, load_dtype
from brainview.decoding.device import DeviceOutOfMemory, default_dtype, oom_guard, resolve_device
from brainview.errors import Cancelled, UserError

__all__ = ["Blip2Adapter", "DeviceOutOfMemory", "resolve_model_reference"]

# LAVIS' Blip2Qformer uses max_txt_len=32 for the contrastive text path.
DEFAULT_MAX_TEXT_TOKENS = 32


def _check_tokens(tokens: np.ndarray, n_query: int, query_dim: int, what: str) -> np.ndarray:
    arr = np.asarray(tokens)
    if arr.ndim == 2 and arr.shape[1] == n_query * query_dim:
        arr = arr.reshape(arr.shape[0], n_query, query_dim)
    if arr.ndim != 3 or arr.shape[1:] != (n_query, query_dim):
        raise UserError(
            f"{what}: query tokens of shape {tuple(arr.shape)} do not fit the model, "
            f"which expects (n, {n_query}, {query_dim})"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise UserError(f"{what}: query tokens must be floating point, not {arr.dtype}")
    return arr


def _settle_on_cpu(model, precision: str) -> str:
    """The captioner's language model in ``precision`` (see :func:`apply_cpu_precision`); with int8 the
    language projection goes to float32 too, off the checkpoint's memory-mapped pages (a tensor left on
    them keeps a whole shard resident)."""
    applied = apply_cpu_precision(model.language_model, precision)
    if applied == "int8":
        model.language_projection.float()
    return applied


def _check_images(images: np.ndarray) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise UserError(f"images must be an (n, height, width, 3) RGB array, not shape {tuple(arr.shape)}")
    if arr.dtype != np.uint8:
        raise UserError(f"images must be uint8 RGB, not {arr.dtype}")
    return arr


def _check_batch(batch_size: int) -> int:
    if int(batch_size) < 1:
        raise UserError(f"batch size must be at least 1, not {batch_size}")
    return int(batch_size)


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


# --------------------------------------------------------------------------- the adapter


class _TextSoFar:
    """A ``generate`` streamer (transformers' ``BaseStreamer`` protocol: ``put``, ``end``) that hands the
    text generated so far to ``on_text`` after each token; the first ``put`` is the prompt, skipped."""

    def __init__(self, tokenizer, on_text: Callable[[str], None]):
        self.tokenizer, self.on_text = tokenizer, on_text
        self.ids: list[int] = []
        self.prompt_seen = False

    def put(self, value) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.ids.extend(int(i) for i in value.reshape(-1).tolist())
        self.on_text(self.tokenizer.decode(self.ids, skip_special_tokens=True).strip())

    def end(self) -> None:
        pass


class Blip2Adapter:
    """Captioner (``Blip2ForConditionalGeneration``) and retrieval (``Blip2ForImageTextRetrieval``) models.

    Build with :meth:`load`. Either model may be absent; the methods that need it then raise
    :class:`~brainview.errors.UserError`. All methods run under ``torch.inference_mode()``, in
    batches, and return numpy arrays (float32) or strings.
    """

    def __init__(
        self,
        device: torch.device,
        captioner=None,
        captioner_tokenizer=None,
        captioner_image_processor=None,
        retrieval=None,
        retrieval_tokenizer=None,
        retrieval_image_processor=None,
        captioner_ref: str | None = None,
        retrieval_ref: str | None = None,
        captioner_parts: str = "all",
        precision: str | None = None,
    ):
        self._device = device
        #: what the captioner's language model runs in: "int8", "float16" or "float32" on a CPU, else None
        self.precision = precision
        self.captioner_parts = captioner_parts
        self.captioner = captioner
        self.captioner_tokenizer = captioner_tokenizer
        self.captioner_image_processor = captioner_image_processor
        self.retrieval = retrieval
        self.retrieval_tokenizer = retrieval_tokenizer
        self.retrieval_image_processor = retrieval_image_processor
        self.captioner_ref = captioner_ref
        self.retrieval_ref = retrieval_ref

    # ----------------------------------------------------------------- loading

    @classmethod
    def load(
        cls,
        captioner: str | os.PathLike | None,
        retrieval: str | os.PathLike | None,
        device: str | torch.device = "auto",
        parts: str = "all",
        progress=None,
        local: bool = True,
        targets_only: bool = False,
        cpu_precision: str = "float32",
    ) -> Blip2Adapter:
        """Load the models from local folders or cached Hugging Face ids (never downloads).

        ``targets_only`` loads just what :meth:`image_query_tokens` and :meth:`text_embeddings`
        use (the training pipeline's targets): the captioner's vision tower, queries and Q-Former
        without its language model, the retrieval model's Q-Former text path and projection
        without its vision tower. Such an adapter cannot caption or embed images for retrieval.

        ``device``: "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "mps"; half precision on a
        GPU (the Q-Former stays in float32, as transformers keeps it). ``parts="caption"`` loads
        only what captioning from query tokens runs (the language projection and the language
        model, shard by shard, reported to ``progress(done, total, what)``): for blip2-opt-2.7b
        2.7 of its 3.8 billion parameters, 5.4 GB in half precision instead of 15 GB of float32
        for the whole checkpoint. ``cpu_precision`` (int8, float16, float32; see
        :mod:`brainview.decoding.cpu_precision`) is what such a captioner runs in on a CPU. Raises
        :class:`UserError` for a missing folder, an id absent from the cache, a broken or
        foreign config, custom code, or incomplete weights; :class:`DeviceOutOfMemory` when the GPU
        is full. ``local=False``: relative references are model ids only (see
        :func:`resolve_model_reference`).
        """
        if captioner is None and retrieval is None:
            raise UserError("no BLIP-2 model given: name a captioner, a retrieval model, or both")
        if parts not in PARTS:
            raise ValueError(f"unknown parts {parts!r}; choose one of {PARTS}")
        dev = resolve_device(device)
        dtype = default_dtype(dev)
        kwargs: dict = {"device": dev, "captioner_ref": None, "retrieval_ref": None}
        try:
            cls._load_parts(kwargs, captioner, retrieval, dev, dtype, local, targets_only, captioner_parts=parts,
                            progress=progress, cpu_precision=check_cpu_precision(cpu_precision))
        except DeviceOutOfMemory:
            # free what was already placed on the device before the caller retries on the CPU
            kwargs.clear()
            gc.collect()
            with contextlib.suppress(Exception):
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                elif dev.type == "mps":
                    torch.mps.empty_cache()
            raise
        return cls(**kwargs)

    @staticmethod
    def _load_parts(kwargs: dict, captioner, retrieval, dev: torch.device, dtype: torch.dtype,
                    local: bool = True, targets_only: bool = False, captioner_parts: str = "all",
                    progress=None, cpu_precision: str = "float32") -> None:
        from transformers import (Blip2ForConditionalGeneration, Blip2ForImageTextRetrieval,
                                  Blip2TextModelWithProjection, Blip2VisionModelWithProjection)

        def check_captioner(config, folder):
            if config.text_config is None:
                raise UserError(f"captioner model in {folder!r} has no language model configuration")
            token, vocab = getattr(config, "image_token_index", None), config.text_config.vocab_size
            if token is not None and not (isinstance(token, int) and 0 <= token < vocab):
                raise UserError(f"captioner model in {folder!r}: image_token_index {token!r} is outside the "
                                f"vocabulary 0..{vocab - 1}")

        def check_retrieval(config, folder):
            if not getattr(config.qformer_config, "use_qformer_text_input", False):
                raise UserError(
                    f"retrieval model in {folder!r} has a Q-Former without a text path "
                    "(qformer_config.use_qformer_text_input is false); it cannot embed texts"
                )

        # targets_only: transformers' classes of those parts load only their weights from the full
        # checkpoint (the captioner's has no vision_projection, which the part class declares, unused)
        parts = (("captioner", captioner, Blip2ForConditionalGeneration, check_captioner,
                  (Blip2VisionModelWithProjection, ("vision_projection",))),
                 ("retrieval", retrieval, Blip2ForImageTextRetrieval, check_retrieval,
                  (Blip2TextModelWithProjection, ())))
        for role, ref, model_class, check, (part_class, unused) in parts:
            if ref is None:
                continue
            folder = resolve_model_reference(ref, role, local=local or Path(os.fspath(ref)).is_absolute())
            refuse_custom_code(folder, role)
            config = read_config(folder, role, model_class.__name__)
            check(config, folder)
            tokenizer, image_processor = load_processor(folder, role)
            model = None
            if role == "captioner" and captioner_parts == "caption":
                # on a CPU each shard is converted as it arrives (int8: the float16 pages go before the next shard)
                settle = (lambda m: _settle_on_cpu(m, cpu_precision)) if dev.type == "cpu" else None
                with oom_guard(dev, "loading the captioner's language model"):
                    model = load_caption_parts(folder, config, dev, load_dtype(dev, cpu_precision), progress, settle)
                kwargs["captioner_parts"] = "caption" if model is not None else "all"
                if model is not None and dev.type == "cpu":  # what is left: a tied output layer
                    kwargs["precision"] = _settle_on_cpu(model, cpu_precision)
            kwargs.update({
                role: (model if model is not None
                       else load_model(part_class, folder, role, dev, dtype, unused) if targets_only
                       else load_model(model_class, folder, role, dev, dtype)),
                f"{role}_tokenizer": tokenizer,
                f"{role}_image_processor": image_processor,
                f"{role}_ref": os.fspath(ref),
            })

    # ----------------------------------------------------------------- properties

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def has_captioner(self) -> bool:
        return self.captioner is not None

    @property
    def has_retrieval(self) -> bool:
        return self.retrieval is not None

    def _main_config(self):
        model = self.captioner if self.captioner is not None else self.retrieval
        return model.config

    @property
    def n_query(self) -> int:
        """Query tokens per image (of the captioner when loaded, else of the retrieval model)."""
        return int(self._main_config().num_query_tokens)

    @property
    def query_dim(self) -> int:
        """Width of a query token (Q-Former hidden size)."""
        return int(self._main_config().qformer_config.hidden_size)

    @property
    def text_dim(self) -> int | None:
        """Width of the image-text contrastive space (the retrieval model's); None without it."""
        if self.retrieval is None:
            return None
        return int(self.retrieval.config.image_text_hidden_size)

    def __repr__(self) -> str:
        return (
            f"Blip2Adapter(captioner={self.captioner_ref!r}, retrieval={self.retrieval_ref!r}, "
            f"device={str(self._device)!r})"
        )

    def _need(self, which: str):
        model = self.captioner if which == "captioner" else self.retrieval
        if model is None:
            what = (
                "captioning and image query tokens"
                if which == "captioner"
                else "text embeddings, image-text projection and retrieval query tokens"
            )
            raise UserError(
                f"no {which} model is loaded, so {what} are not available; "
                f"name one in the bundle's manifest (vlm.{which}) or load it explicitly"
            )
        return model

    # ----------------------------------------------------------------- images -> query tokens

    def _pixel_values(self, image_processor, images: np.ndarray, model) -> torch.Tensor:
        if image_processor is None:
            size = model.config.vision_config.image_size
            image_processor = blip_image_processor_class()(size={"height": size, "width": size})
        out = image_processor(list(images), return_tensors="pt", input_data_format="channels_last")
        return out["pixel_values"].to(self._device, dtype=model.vision_model.dtype)

    @staticmethod
    def _qformer_query_output(model, pixel_values: torch.Tensor) -> torch.Tensor:
        """vision model -> Q-Former over the learned queries, as in transformers' BLIP-2 code."""
        image_embeds = model.vision_model(pixel_values=pixel_values, return_dict=True).last_hidden_state
        image_attention_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
        query_tokens = model.query_tokens.expand(image_embeds.shape[0], -1, -1)
        out = model.qformer(
            query_embeds=query_tokens,
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_attention_mask,
            return_dict=True,
        )
        return out.last_hidden_state

    def _query_tokens(self, which: str, images: np.ndarray, batch_size: int) -> np.ndarray:
        model = self._need(which)
        if which == "captioner" and self.captioner_parts != "all":
            raise UserError("the captioner was loaded for captioning only (no vision model or Q-Former); "
                            "load it with parts='all' to compute image query tokens")
        processor = self.captioner_image_processor if which == "captioner" else self.retrieval_image_processor
        images = _check_images(images)
        batch_size = _check_batch(batch_size)
        cfg = model.config
        result = np.empty((len(images), cfg.num_query_tokens, cfg.qformer_config.hidden_size), dtype=np.float32)
        with torch.inference_mode(), oom_guard(self._device, f"computing {which} query tokens"):
            for sl in _batches(len(images), batch_size):
                pv = self._pixel_values(processor, images[sl], model)
                result[sl] = self._qformer_query_output(model, pv).float().cpu().numpy()
        return result

    def image_query_tokens(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Captioner's Q-Former query output for uint8 images (n, H, W, 3) -> float32 (n, n_query, query_dim).

        Taken before ``language_projection``: these are the stage-1 regression targets.
        """
        return self._query_tokens("captioner", images, batch_size)

    def retrieval_query_tokens(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """The retrieval model's own Q-Former query output -> float32 (n, n_query, query_dim)."""
        return self._query_tokens("retrieval", images, batch_size)

    # ----------------------------------------------------------------- captioning

    def caption(
        self,
        query_tokens: np.ndarray,
        prompt: str | Sequence[str] = "",
        max_new_tokens: int = 30,
        num_beams: int = 1,
        batch_size: int = 16,
        stop: Callable[[], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> list[str]:
        """Generate from (predicted) query tokens (n, n_query, query_dim) after a prompt; greedy by
        default, beam search if num_beams > 1.

        ``prompt`` is one text for all, or one per set of tokens (a question each): the tokens go
        through ``language_projection`` and take the place of the image tokens in front of the
        prompt (with its BOS token), then the language model's ``generate`` runs, as
        ``Blip2ForConditionalGeneration.generate`` does. Prompts of different lengths in one batch
        are padded on the left and masked (OPT numbers positions from the attention mask), so each
        row sees what it would see alone. Returns the generated text only (without the prompt),
        stripped.

        ``stop`` (a callable, asked once per generated token): when it returns True, generation ends
        at the next token and :class:`~brainview.errors.Cancelled` is raised, so a closing window
        need not wait for a batch, nor a newer selection for a caption nobody will see.

        ``on_text(text so far)`` after each generated token, for one greedy caption (streamed into its
        box: the wait a user feels is the first token's); ignored for a batch or a beam search, whose
        partial text is not a prefix of the result.
        """
        model = self._need("captioner")
        tokenizer = self.captioner_tokenizer
        cfg = model.config
        tokens = _check_tokens(query_tokens, cfg.num_query_tokens, cfg.qformer_config.hidden_size, "caption")
        batch_size = _check_batch(batch_size)
        if int(max_new_tokens) < 1:
            raise UserError(f"max_new_tokens must be at least 1, not {max_new_tokens}")
        if int(num_beams) < 1:
            raise UserError(f"num_beams must be at least 1, not {num_beams}")
        prompts = [prompt] * len(tokens) if isinstance(prompt, str) else [str(p) for p in prompt]
        if len(prompts) != len(tokens):
            raise UserError(f"{len(prompts)} prompts for {len(tokens)} sets of query tokens; give one, or one each")
        if len(tokens) == 0:
            return []
        lm = model.language_model
        embed = model.get_input_embeddings()
        proj_dtype = model.language_projection.weight.dtype
        n_query = cfg.num_query_tokens
        image_token = cfg.image_token_index
        encoder_decoder = bool(lm.config.is_encoder_decoder)
        # transformers >= 4.47 layout: <image>*n_query + BOS + prompt, image embeddings scattered in and
        # the ids passed along; older BLIP-2 configs: projected queries in front of the prompt embeddings.
        pass_ids = image_token is not None and not encoder_decoder

        gen_kwargs = {
            "num_beams": int(num_beams),
            "do_sample": False,
            "num_return_sequences": 1,
        }
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = lm.generation_config.pad_token_id or lm.generation_config.eos_token_id
        if pad is not None:
            gen_kwargs["pad_token_id"] = pad
        if stop is not None:
            from transformers import StoppingCriteria, StoppingCriteriaList

            class _StopWhenSet(StoppingCriteria):
                def __call__(self, input_ids, scores, **kwargs):
                    return torch.full((input_ids.shape[0],), bool(stop()), dtype=torch.bool, device=input_ids.device)

            gen_kwargs["stopping_criteria"] = StoppingCriteriaList([_StopWhenSet()])
        slot_id = image_token if image_token is not None else (pad or 0)
        prompt_ids = {p: self.prompt_ids(p) for p in set(prompts)}

        captions: list[str] = []
        with torch.inference_mode(), oom_guard(self._device, "captioning"):
            for sl in _batches(len(tokens), batch_size):
                if stop is not None and stop():
                    raise Cancelled("captioning was cancelled")
                rows = [[slot_id] * n_query + prompt_ids[p] for p in prompts[sl]]
                width = max(len(r) for r in rows)
                input_ids = torch.tensor([[pad or 0] * (width - len(r)) + r for r in rows], device=self._device)
                attention_mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self._device)
                slots = torch.zeros_like(input_ids, dtype=torch.bool)
                for i, r in enumerate(rows):
                    slots[i, width - len(r):width - len(r) + n_query] = True
                q = torch.tensor(np.asarray(tokens[sl]), dtype=torch.float32, device=self._device)
                projected = model.language_projection(q.to(proj_dtype))
                inputs_embeds = embed(input_ids)
                projected = projected.to(inputs_embeds.device, inputs_embeds.dtype)
                inputs_embeds = inputs_embeds.masked_scatter(slots.unsqueeze(-1).expand_as(inputs_embeds), projected)
                inputs = {"inputs_embeds": inputs_embeds, "attention_mask": attention_mask}
                if pass_ids:
                    inputs["input_ids"] = input_ids
                streamer = (_TextSoFar(tokenizer, on_text) if on_text is not None and len(tokens) == 1
                            and int(num_beams) == 1 else None)
                out = lm.generate(**inputs, **gen_kwargs, streamer=streamer,
                                  max_new_tokens=self._generation_room(lm, width, max_new_tokens))
                if stop is not None and stop():
                    raise Cancelled("captioning was cancelled")
                if pass_ids:
                    # decoder-only generate given input_ids returns them in front of the new tokens
                    out = out[:, input_ids.shape[1] :]
                texts = tokenizer.batch_decode(out, skip_special_tokens=True)
                captions.extend(t.strip() for t in texts)
        return captions

    def prompt_ids(self, prompt: str) -> list[int]:
        """The prompt's token ids (with BOS); a prompt holding the image token is refused (it would take
        an image slot)."""
        model = self._need("captioner")
        if not isinstance(prompt, str):
            raise UserError(f"the prompt must be text, not {type(prompt).__name__}")
        ids = list(self.captioner_tokenizer(prompt or "").input_ids)
        token = model.config.image_token_index
        if token is not None and token in ids:
            raise UserError("the prompt contains the image token; image tokens come only from the brain pattern")
        return ids

    @staticmethod
    def _generation_room(lm, width: int, max_new_tokens: int) -> int:
        """``max_new_tokens``, capped so query tokens, prompt and answer fit the language model's
        positions (beyond them its position embedding fails with an IndexError)."""
        positions = getattr(lm.config, "max_position_embeddings", None)
        if positions is None:
            return int(max_new_tokens)
        room = int(positions) - width
        if room < 1:
            raise UserError(f"the query tokens and the prompt ({width} tokens) fill the language model's "
                            f"{positions} positions; shorten the prompt")
        return min(int(max_new_tokens), room)

    def count_tokens(self, text: str) -> int:
        """Length of ``text`` in the captioner's tokens (with BOS), for prompt budgets."""
        self._need("captioner")
        return len(self.captioner_tokenizer(text).input_ids)

    @property
    def max_prompt_tokens(self) -> int:
        """Room for a prompt: the language model's positions after the query tokens (and the
        tokenizer's limit), less 32 tokens for the answer."""
        model = self._need("captioner")
        positions = int(getattr(model.config.text_config, "max_position_embeddings", 512)) - model.config.num_query_tokens
        limit = self.captioner_tokenizer.model_max_length
        if isinstance(limit, int) and 0 < limit < positions:
            positions = limit
        return max(8, positions - 32)

    # ----------------------------------------------------------------- text side

    def text_embeddings(
        self, texts: Sequence[str], batch_size: int = 64, max_length: int = DEFAULT_MAX_TEXT_TOKENS
    ) -> np.ndarray:
        """Retrieval model's ITC text embedding of each text -> float32 (n, text_dim), L2-normalized.

        Text-only Q-Former forward (no queries, no image), ``text_projection`` of the first
        ([CLS]) token, normalized: what ``Blip2ForImageTextRetrieval`` computes for ITC.
        """
        model = self._need("retrieval")
        tokenizer = self.retrieval_tokenizer
        if isinstance(texts, str):
            raise UserError("text_embeddings expects a list of texts, not a single string")
        texts = [str(t) for t in texts]
        batch_size = _check_batch(batch_size)
        max_pos = int(model.config.qformer_config.max_position_embeddings)
        max_length = max(2, min(int(max_length), max_pos))
        result = np.empty((len(texts), int(model.config.image_text_hidden_size)), dtype=np.float32)
        with torch.inference_mode(), oom_guard(self._device, "embedding texts"):
            for sl in _batches(len(texts), batch_size):
                enc = tokenizer(
                    texts[sl],
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                    return_token_type_ids=False,
                )
                input_ids = enc["input_ids"].to(self._device)
                attention_mask = enc["attention_mask"].to(self._device)
                query_embeds = model.embeddings(input_ids=input_ids)
                out = model.qformer(
                    query_embeds=query_embeds, query_length=0, attention_mask=attention_mask, return_dict=True
                )
                cls_token = out.last_hidden_state[:, 0, :].to(model.text_projection.weight.dtype)
                emb = torch.nn.functional.normalize(model.text_projection(cls_token).float(), dim=-1)
                result[sl] = emb.cpu().numpy()
        return result

    def project_image_tokens(self, query_tokens: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Retrieval model's ``vision_projection`` of query tokens, L2-normalized per token.

        (n, n_query, query_dim) -> float32 (n, n_query, text_dim): the image side of ITC. The
        score of an image and a text is the maximum over tokens of the dot product.
        """
        model = self._need("retrieval")
        cfg = model.config
        tokens = _check_tokens(query_tokens, cfg.num_query_tokens, cfg.qformer_config.hidden_size, "project_image_tokens")
        batch_size = _check_batch(batch_size)
        weight = model.vision_projection.weight
        result = np.empty((len(tokens), tokens.shape[1], int(cfg.image_text_hidden_size)), dtype=np.float32)
        with torch.inference_mode(), oom_guard(self._device, "projecting image tokens"):
            for sl in _batches(len(tokens), batch_size):
                q = torch.tensor(np.asarray(tokens[sl]), dtype=torch.float32, device=self._device)
                proj = model.vision_projection(q.to(weight.dtype)).float()
                result[sl] = torch.nn.functional.normalize(proj, dim=-1).cpu().numpy()
        return result
