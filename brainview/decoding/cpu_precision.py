"""How the captioner's language model runs on a CPU: int8, float16 or float32 weights.

Generating a caption reads every weight once per token, so on a CPU its speed is set by the bytes
of weights, not by arithmetic. Measured on OPT-2.7B (docs/notes/issue-24.md, 2 quiet cores): int8
(``torch.ao`` dynamic quantization of every ``nn.Linear``: int8 weights, activations quantized per
token) reads a quarter of float32's bytes and runs a token 4.1× faster (0.13 s at full size) with a
4× shorter prefill; float16 reads half, runs 1.8× faster per token but its prefill is 2.3× slower
than float32 (this CPU has no float16 arithmetic: 7.4 s for 33 positions at full size). ``torch.ao.quantization`` is deprecated upstream in favour of torchao, whose
eager int8 weight-only path is slower than float32 on a CPU without ``torch.compile`` (minutes
to compile): so int8 uses ``torch.ao`` while it exists and falls back to float16 when it does not.

Weights are read from the shards in float16 (or float32) and converted one linear layer at a
time: a float32 copy of the whole model never exists.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from brainview.errors import UserError

if TYPE_CHECKING:  # torch is imported on use: the window and the parser read the choices without it
    import torch
    import torch
    from torch import nn

CPU_PRECISIONS = ("int8", "float16", "float32")
DEFAULT_CPU_PRECISION = "int8"
#: bytes per weight of each precision, for memory and time estimates
BYTES_PER_WEIGHT = {"int8": 1, "float16": 2, "float32": 4}


def check_cpu_precision(name: str | None) -> str:
    """``name`` if it is a known precision (None: the default), else a UserError."""
    if name is None:
        return DEFAULT_CPU_PRECISION
    if name not in CPU_PRECISIONS:
        raise UserError(f"unknown CPU precision {name!r}; choose one of {', '.join(CPU_PRECISIONS)}")
    return name


def int8_available() -> bool:
    """Whether this torch still has dynamic int8 linear layers with a CPU engine."""
    import torch

    try:
        from torch.ao.nn.quantized.dynamic import Linear  # noqa: F401
    except ImportError:
        return False
    return any(engine in torch.backends.quantized.supported_engines for engine in ("x86", "fbgemm", "onednn", "qnnpack"))


def effective_precision(precision: str | None) -> str:
    """The precision that will run: int8 becomes float16 where this torch lacks it."""
    precision = check_cpu_precision(precision)
    return "float16" if precision == "int8" and not int8_available() else precision


def load_dtype(device: torch.device, precision: str | None) -> torch.dtype:
    """The dtype weights are read in: half precision on a GPU; on a CPU float32 for float32, else
    float16 (int8 converts from it layer by layer)."""
    import torch

    if device.type != "cpu":
        return torch.float16
    return torch.float32 if effective_precision(precision) == "float32" else torch.float16


def apply_cpu_precision(model: nn.Module, precision: str | None) -> str:
    """Turn a CPU model read by :func:`load_dtype` into ``precision`` in place; returns the one applied.

    int8: every ``nn.Linear`` becomes a dynamic int8 linear, built from a float32 copy of that layer
    only; the rest (embeddings, layer norms) goes to float32, since int8 layers return float32. A
    tied output layer gets its own int8 copy (a quarter of the embedding's float32 bytes). Layers not
    loaded yet (on the meta device) are left for a later call, so a model can be converted shard by
    shard while it loads."""
    precision = effective_precision(precision)
    if precision != "int8":
        return precision
    import torch
    from torch import nn
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    from torch.ao.quantization import per_channel_dynamic_qconfig

    with warnings.catch_warnings():  # the quantized-tensor deprecation is known and said in the docstring above
        warnings.filterwarnings("ignore", "torch.quantize_per", UserWarning)
        layers = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
                  if type(child) is nn.Linear and not any(p.is_meta for p in child.parameters())]
        for parent, name, child in layers:
            layer = torch.nn.utils.skip_init(nn.Linear, child.in_features, child.out_features,
                                             bias=child.bias is not None)  # filled below, not initialized
            with torch.no_grad():
                layer.weight.copy_(child.weight)
                if child.bias is not None:
                    layer.bias.copy_(child.bias)
            layer.qconfig = per_channel_dynamic_qconfig  # a scale per output row: more captions as float32's
            setattr(parent, name, DynamicLinear.from_float(layer))
    model.float()
    return precision


#: measured time per generated token over the time to read its weights once at the measured
#: bandwidth (OPT-2.7B on 2 quiet cores: 1.75 for int8, 1.94 for float16, 1.81 for float32 on 8 of
#: its layers; docs/notes/issue-24.md)
READ_OVERHEAD = 1.8


def measure_read_bandwidth(nbytes: int = 2**28) -> float:
    """Bytes per second this machine reads from memory (the best of three sums of a 256 MB tensor):
    the floor of a caption token's time on a CPU."""
    import time

    import torch

    block = torch.ones(nbytes // 4)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        block.sum()
        best = min(best, time.perf_counter() - start)
    return nbytes / best


def estimate_token_seconds(parameters: int, precision: str | None, bandwidth: float) -> float:
    """Seconds per generated token: the weights' bytes over ``bandwidth``, times :data:`READ_OVERHEAD`."""
    return parameters * BYTES_PER_WEIGHT[effective_precision(precision)] / bandwidth * READ_OVERHEAD


def measure_token_seconds(language_model: nn.Module, prefix: int = 33, tokens: int = 5) -> float | None:
    """Seconds per generated token of a decoder-only language model as loaded (batch 1, greedy, after a
    ``prefix`` of 32 query tokens and a BOS, KV cache): the median time between consecutive tokens of
    one generation, stamped as each token arrives, so the prefill (compute-bound, seconds at OPT-2.7B)
    is left out; None for an encoder-decoder."""
    import statistics
    import time

    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    if getattr(language_model.config, "is_encoder_decoder", False):
        return None
    stamps: list[float] = []

    class Stamp(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            stamps.append(time.perf_counter())
            return torch.zeros((input_ids.shape[0],), dtype=torch.bool, device=input_ids.device)

    ids = torch.ones((1, prefix), dtype=torch.long, device=language_model.device)
    pad = language_model.generation_config.pad_token_id or language_model.generation_config.eos_token_id
    with torch.inference_mode():
        language_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                                min_new_tokens=tokens, do_sample=False, num_beams=1, pad_token_id=pad,
                                stopping_criteria=StoppingCriteriaList([Stamp()]))
    return statistics.median(b - a for a, b in zip(stamps, stamps[1:]))
