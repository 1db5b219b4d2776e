"""Opening a bundle and loading its language models, without Qt: the long steps the window runs in
workers (or a script runs in line) before it hands the result to a :class:`~brainview.state.session.Session`,
and what the captioner will cost, said before it is loaded."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from brainview.bundle import Bundle, open_bundle
from brainview.cortex.surface import Cortex
from brainview.decoding.decoder import Decoder
from brainview.decoding.prediction_cache import CacheCheck, open_pass
from brainview.errors import UserError
from brainview.state.caption_speed import CaptionSpeed, expected_speed, remember

#: why captions are off between opening a bundle and loading its language models
MODELS_NOT_LOADED = "the language models are not loaded yet"

ProgressCallback = Callable[[int, int, str], None]


@dataclass
class Loaded:
    """The result of :func:`load`: what the session needs, plus notes for the user."""

    bundle: Bundle
    decoder: Decoder
    cortex: Cortex
    device: str  # the device the language models run on ("cpu", "cuda", ...), or "none"
    notes: list[str] = field(default_factory=list)
    similarity: dict[str, np.ndarray] = field(default_factory=dict)  # stage -> brain x image cosine, prepared
    cache: CacheCheck = field(default_factory=CacheCheck)  # what opening found of the bundle's prediction cache


def load(path: str | Path, device: str = "auto", load_language_models: bool = True,
         progress: ProgressCallback | None = None, cpu_precision: str | None = None) -> Loaded:
    """Open and validate a bundle, then load its language models; a full GPU falls back to the CPU.

    Raises :class:`~brainview.errors.UserError` (``BundleError``) for a broken bundle. Missing
    language models do not raise: the decoder retrieves and says why captions are off.
    """
    report = progress or (lambda done, total, what: None)
    report(0, 2, "opening the bundle")
    opened = open_for_browsing(path)
    report(1, 2, "loading the language models")
    decoder, notes = load_decoder(opened.bundle, device, load_language_models, cpu_precision=cpu_precision)
    decoder.share_predictions(opened.decoder)
    report(2, 2, "ready")
    return replace(opened, decoder=decoder, device=device_name(decoder), notes=notes)


def open_for_browsing(path: str | Path, trial: int = 0) -> Loaded:
    """Open and validate a bundle without its language models (no torch): the cortex and ``trial``'s
    retrievals work at once (its tokens come from the bundle's prediction cache when a sample agrees
    with the weights, else from one pass over them, in the worker that opens); every trial's rank
    follows from :meth:`Session.iter_predictions` (instant with a cache), :func:`load_decoder` adds
    captions."""
    bundle = open_bundle(path)
    decoder = Decoder(bundle, None, MODELS_NOT_LOADED)
    check = open_pass(decoder, min(trial, bundle.n_trials - 1))
    cortex = Cortex.from_bundle(bundle)
    cortex.prepare_view()
    return Loaded(bundle, decoder, cortex, "none", cache=check)


def load_decoder(bundle: Bundle, device: str = "auto", load_language_models: bool = True,
                 progress: ProgressCallback | None = None,
                 cpu_precision: str | None = None) -> tuple[Decoder, list[str]]:
    """The bundle's decoder on ``device`` (on a CPU in ``cpu_precision``), falling back to the CPU when
    the GPU is full; notes say why. ``progress(done, total, what)`` is called per checkpoint shard of the
    language model. A captioner loaded on the CPU is timed (:func:`measure_captioner`)."""
    from brainview.decoding.blip2 import DeviceOutOfMemory

    notes = []
    options = {"load_language_models": load_language_models, "progress": progress, "cpu_precision": cpu_precision}
    start = time.perf_counter()
    try:
        decoder = Decoder.load(bundle, device=device, **options)
    except DeviceOutOfMemory as full:
        notes.append(f"{full}; the models were loaded on the CPU instead")
        start = time.perf_counter()
        decoder = Decoder.load(bundle, device="cpu", **options)
    measure_captioner(decoder, time.perf_counter() - start)
    if not decoder.can_caption:
        notes.append(f"Captions are off: {decoder.captions_missing}. Retrieval still works.")
    return decoder, notes


#: a captioner this big asks before loading on a CPU: 2 GB of float32 and captions of seconds
CPU_ASK_PARAMETERS = 500_000_000


@dataclass
class ModelPlan:
    """What loading the captioner will take, known before loading it (from checkpoint headers and,
    on a CPU, the last measurement here or this machine's memory bandwidth)."""

    device: str  # where it would run: "cpu", "cuda", ...
    parameters: int  # what captioning from tokens needs: language projection + language model
    skipped: int  # parameters of the checkpoint left unloaded (vision tower, Q-Former)
    max_new_tokens: int
    precision: str = "float16"  # what the language model runs in: on a GPU half precision
    speed: CaptionSpeed | None = None  # on a CPU: seconds per token (and to load), measured or estimated

    @property
    def on_cpu(self) -> bool:
        return self.device == "cpu"

    @property
    def memory_bytes(self) -> int:
        from brainview.decoding.cpu_precision import BYTES_PER_WEIGHT

        return self.parameters * BYTES_PER_WEIGHT[self.precision]

    @property
    def seconds_per_caption(self) -> float | None:
        return None if self.speed is None else self.speed.token_seconds * self.max_new_tokens

    @property
    def ask_first(self) -> bool:
        return self.on_cpu and self.parameters > CPU_ASK_PARAMETERS

    def text(self) -> str:
        memory = self.memory_bytes
        size = f"{memory / 2**30:.1f} GiB" if memory >= 2**30 else f"{memory / 2**20:.0f} MiB"
        out = (f"The captioner needs {_count(self.parameters)} parameters (its language model): {size} "
               f"{f'in {self.precision} on the CPU' if self.on_cpu else 'in half precision on the GPU'}"
               + (f"; the {_count(self.skipped)} of the vision tower and Q-Former are not loaded." if self.skipped
                  else "."))
        if self.on_cpu and self.speed is not None:
            load = (f"loading takes about {self.speed.load_seconds:.0f} s and " if self.speed.load_seconds is not None
                    else "")
            out += (f" Without a GPU {load}a {self.max_new_tokens}-token caption about "
                    f"{self.seconds_per_caption:.1f} s ({self.speed.token_seconds:.2f} s per token, "
                    f"{self.speed.source}); retrieval works without it.")
        return out


def _count(n: int) -> str:
    return f"{n / 1e9:.2g} billion" if n >= 1e9 else f"{n / 1e6:.2g} million" if n >= 1e6 else f"{n:,}"


def plan_language_models(bundle: Bundle, device: str = "auto", cpu_precision: str | None = None) -> ModelPlan | None:
    """What loading the bundle's captioner on ``device`` will take, whether the bundle names a folder or
    a model id (read from the local Hugging Face cache); None when that cannot be known (no captioner,
    an id not in the cache, a checkpoint not in safetensors). Imports torch: call it in a worker."""
    from brainview.decoding.blip2_loading import resolve_model_reference
    from brainview.decoding.checkpoints import caption_parts_size
    from brainview.decoding.cpu_precision import effective_precision
    from brainview.decoding.device import resolve_device

    try:
        reference = bundle.resolve_model(bundle.vlm.get("captioner"))
        where = resolve_device(device).type
        folder = (resolve_model_reference(reference, "captioner", local=Path(reference).is_absolute())
                  if reference else None)
    except UserError:
        return None
    sizes = caption_parts_size(folder) if folder is not None else None
    if sizes is None:
        return None
    plan = ModelPlan(where, sizes[0], sizes[1] - sizes[0], int(bundle.vlm["max_new_tokens"]))
    if where == "cpu":
        plan.precision = effective_precision(cpu_precision)
        plan.speed = expected_speed(reference, plan.parameters, plan.precision)
    return plan


def measure_captioner(decoder: Decoder, load_seconds: float) -> None:
    """Time a token of a captioner just loaded on the CPU and remember it (with ``load_seconds``) for the
    next "Load on the CPU?" question; a captioner already measured in this process is left alone."""
    from brainview.decoding.cpu_precision import measure_token_seconds

    adapter = decoder.adapter
    if adapter is None or adapter.captioner is None or adapter.device.type != "cpu" or adapter.precision is None:
        return
    if getattr(adapter, "token_seconds", None) is not None:
        return
    adapter.token_seconds = measure_token_seconds(adapter.captioner.language_model)
    if adapter.token_seconds is not None:
        remember(decoder.bundle.resolve_model(decoder.bundle.vlm["captioner"]), adapter.precision,
                 adapter.token_seconds, load_seconds)


def device_name(decoder: Decoder) -> str:
    """Where the language models run ("cpu", "cuda:0", ...), or "none" without them."""
    return str(decoder.adapter.device) if decoder.adapter is not None else "none"
