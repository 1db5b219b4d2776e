"""Loading BLIP-2 models safely: a folder or a cached model id (never the network), no code from
the folder, safetensors only, and for captioning from tokens only the parts it needs."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

import torch

from brainview.decoding.checkpoints import CAPTION_PARTS, checkpoint_shards
from brainview.decoding.device import DeviceOutOfMemory, is_oom, oom_guard
from brainview.errors import UserError

def _looks_like_path(ref: str) -> bool:
    return (
        os.path.isabs(ref)
        or ref.startswith((".", "~"))
        or "\\" in ref
        or ref.count("/") > 1
        or ref.endswith("/")
        or ref.endswith(os.sep)
    )


def resolve_model_reference(ref: str | os.PathLike, role: str, local: bool = True) -> str:
    """Return a local folder for ``ref`` (a folder, or a model id in the local Hugging Face cache).

    Never touches the network. ``role`` ("captioner" or "retrieval") names the model in messages.
    ``local=False`` takes ``ref`` as a model id only (a bundle's reference that is not one of its
    folders), so a same-named folder in the working directory is never picked up.
    """
    ref = os.fspath(ref)
    if not ref or not ref.strip():
        raise UserError(f"{role} model reference is empty; give a folder or a Hugging Face model id")
    path = Path(ref).expanduser()
    if local and path.exists():
        if not path.is_dir():
            raise UserError(f"{role} model {ref!r} is a file, not a model folder saved with save_pretrained")
        if not (path / "config.json").is_file():
            raise UserError(f"{role} model folder {str(path)!r} has no config.json; it is not a saved model")
        return str(path)
    if _looks_like_path(ref) or not local and path.is_absolute():
        raise UserError(f"{role} model folder {ref!r} does not exist")
    # A Hugging Face model id: resolve from the local cache only.
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(ref, local_files_only=True)
    except Exception:  # noqa: BLE001 - any failure means "not usable from the cache"
        folder = None
    if folder is None or not (Path(folder) / "config.json").is_file():
        raise UserError(
            f"{role} model {ref!r} is neither a local folder nor in the local Hugging Face cache, and "
            f"brainview never downloads it; download it yourself (e.g. `hf download {ref}`) or give "
            "the path of a folder saved with save_pretrained"
        )
    _inside_cache(Path(folder), ref, role)
    return folder


def _inside_cache(folder: Path, ref: str, role: str) -> None:
    """A cached model's files must all lie in the Hugging Face cache (snapshots link to its blobs)."""
    from huggingface_hub import constants

    cache = Path(constants.HF_HUB_CACHE).resolve()
    for path in [folder, *folder.rglob("*")]:
        try:
            path.resolve(strict=True).relative_to(cache)
        except (OSError, ValueError, RuntimeError):
            raise UserError(f"{role} model {ref!r}: {path} points outside the Hugging Face cache") from None


#: keys of a model folder's JSON files that make transformers import Python code from the folder
_CUSTOM_CODE_KEYS = ("auto_map", "custom_pipelines")


def refuse_custom_code(folder: str, role: str) -> None:
    """Refuse a model folder whose configuration names its own Python code (``auto_map``).

    transformers is also always called with ``trust_remote_code=False``; this says why up front,
    before any transformers code reads the folder. A model is data: brainview never runs its code.
    """
    for path in sorted(Path(folder).glob("*.json")):
        if "config" not in path.name or path.stat().st_size > 2**20:
            continue
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            raise UserError(f"{role} model: {path} is not valid JSON") from None
        found = [k for k in _CUSTOM_CODE_KEYS if isinstance(document, dict) and k in document]
        if found:
            raise UserError(f"{role} model: {path.name} names custom code ({found[0]}); brainview never runs "
                            "code from a model folder")


#: every transformers loader gets these: no code from the folder, no pickled weights
SAFE_LOADING = {"local_files_only": True, "trust_remote_code": False}


def read_config(folder: str, role: str, expected: str):
    from transformers import AutoConfig, Blip2Config

    cfg_path = Path(folder) / "config.json"
    try:
        json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{role} model: {cfg_path} is not valid JSON ({exc})") from None
    try:
        config = AutoConfig.from_pretrained(folder, **SAFE_LOADING)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"{role} model: {cfg_path} is not a usable model configuration ({short_error(exc)})") from None
    if not isinstance(config, Blip2Config):
        raise UserError(
            f"{role} model: {cfg_path} describes a {getattr(config, 'model_type', '?')!r} model, "
            f"not a BLIP-2 model ({expected})"
        )
    archs = getattr(config, "architectures", None) or []
    if archs and expected not in archs and not (expected == "Blip2ForConditionalGeneration" and "Blip2Model" in archs):
        raise UserError(f"{role} model: {cfg_path} holds a {archs[0]}, but the {role} must be a {expected}")
    return config


def short_error(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_processor(folder: str, role: str):
    """The folder's Blip2Processor; or its tokenizer plus a BLIP image processor."""
    from transformers import AutoTokenizer, Blip2Processor

    try:
        processor = Blip2Processor.from_pretrained(folder, **SAFE_LOADING)
        return processor.tokenizer, processor.image_processor
    except Exception:  # noqa: BLE001 - fall back to the parts below
        pass
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **SAFE_LOADING)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"{role} model folder {folder!r} has no usable tokenizer ({short_error(exc)})") from None
    image_processor = None
    with contextlib.suppress(Exception):
        image_processor = blip_image_processor_class().from_pretrained(folder, **SAFE_LOADING)
    return tokenizer, image_processor


def blip_image_processor_class():
    """BlipImageProcessor (torchvision backend) where torchvision exists, else its PIL twin."""
    from transformers.utils import is_torchvision_available

    if is_torchvision_available():
        from transformers import BlipImageProcessor

        return BlipImageProcessor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    return BlipImageProcessorPil


# Weights the adapter never uses: their absence from a checkpoint is harmless.
_UNUSED_WEIGHTS = ("lm_head", "itm_head", "position_ids")
#: parts a captioner may be loaded with: everything, or what captioning from tokens needs
PARTS = ("all", "caption")


def load_caption_parts(folder: str, config, device: torch.device, dtype: torch.dtype, progress=None, settle=None):
    """A ``Blip2ForConditionalGeneration`` holding only ``language_projection`` and the language model,
    read tensor by tensor from the checkpoint's shards straight onto ``device`` in ``dtype``
    (``progress(done, total, what)`` after each shard). ``settle(model)`` runs after each shard's
    weights are in (int8 converts them there, so the shard's memory-mapped pages are let go before
    the next shard is read). None when the checkpoint is not in safetensors or does not name every
    needed weight: the caller then loads the whole model."""
    from safetensors import safe_open
    from transformers import Blip2ForConditionalGeneration, GenerationConfig

    shards = checkpoint_shards(folder)
    if not shards:
        return None
    with torch.device("meta"):
        model = Blip2ForConditionalGeneration(config)
    model.vision_model, model.qformer, model.query_tokens = None, None, None
    head = "language_model.lm_head.weight"
    tied = bool(getattr(config.text_config, "tie_word_embeddings", True))
    # a tied output layer is the input embedding: a checkpoint's stored copy is not read (0.5 GB at OPT-2.7B)
    wanted = {k for k in model.state_dict() if k.startswith(CAPTION_PARTS) and not (tied and k == head)}
    found = set()
    for i, shard in enumerate(shards):
        state = {}
        try:
            with safe_open(str(shard), framework="pt") as handle:
                for key in handle.keys():
                    if key in wanted:
                        state[key] = handle.get_tensor(key).to(device=device, dtype=dtype)
        except Exception as exc:  # noqa: BLE001 - a damaged checkpoint is the user's to fix, in one line
            if is_oom(exc):
                raise
            raise UserError(f"captioner model in {folder!r} could not be loaded: {short_error(exc)}") from None
        for key, tensor in state.items():  # assigned one by one: modules converted by settle() keep theirs
            owner, _, name = key.rpartition(".")
            module = model.get_submodule(owner)
            if name in module._buffers:
                module._buffers[name] = tensor
            else:
                setattr(module, name, torch.nn.Parameter(tensor, requires_grad=False))
        found |= set(state)
        del state
        if settle is not None:
            settle(model)
        if progress is not None:
            progress(i + 1, len(shards), f"loading the language model: shard {i + 1} of {len(shards)}")
    if wanted - found:
        return None
    if tied:
        model.language_model.get_output_embeddings().weight = model.language_model.get_input_embeddings().weight
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        return None
    with contextlib.suppress(OSError, ValueError):
        model.generation_config = GenerationConfig.from_pretrained(folder, local_files_only=True)
    return model.eval()


class _HeldLoadReports(logging.Filter):
    """Holds back transformers' "LOAD REPORT" warnings while a model loads, to be let through only when
    they report something unexpected."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if "LOAD REPORT" in record.getMessage():
            self.records.append(record)
            return False
        return True


@contextlib.contextmanager
def held_load_reports():
    """Yields the held reports of transformers' model loading (:class:`_HeldLoadReports`)."""
    logger = logging.getLogger("transformers.modeling_utils")
    held = _HeldLoadReports()
    logger.addFilter(held)
    try:
        yield held
    finally:
        logger.removeFilter(held)


def surprising_keys(model, unexpected) -> list[str]:
    """Unexpected checkpoint weights that belong to a part ``model`` has: those of the parts a part class
    leaves out on purpose (the vision tower under a text encoder) are expected and not listed."""
    kept = {name for name, _ in model.named_children()} | {name for name, _ in model.named_parameters(recurse=False)}
    return sorted(key for key in unexpected if key.split(".")[0] in kept)


def load_model(cls, folder: str, role: str, device: torch.device, dtype: torch.dtype, unused: tuple[str, ...] = ()):
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its bar on stderr would break "one line on stderr" for the CLI
    try:
        with held_load_reports() as held:
            model, info = cls.from_pretrained(folder, **SAFE_LOADING, use_safetensors=True, dtype=dtype,
                                              output_loading_info=True)
        if surprising_keys(model, info.get("unexpected_keys", ())):  # a report worth reading: let it through
            for record in held.records:
                logging.getLogger(record.name).handle(record)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001
        if is_oom(exc):
            raise DeviceOutOfMemory(device, f"loading the {role} model") from exc
        raise UserError(f"{role} model in {folder!r} could not be loaded: {short_error(exc)}") from None
    missing = sorted(k for k in info.get("missing_keys", ()) if not any(u in k for u in _UNUSED_WEIGHTS + unused))
    mismatched = list(info.get("mismatched_keys", ()))
    if missing or mismatched:
        bad = missing or [str(m[0]) if isinstance(m, tuple) else str(m) for m in mismatched]
        raise UserError(
            f"{role} model in {folder!r} is not a complete {cls.__name__}: "
            f"{len(bad)} weights are missing or of the wrong shape (e.g. {', '.join(bad[:3])})"
        )
    model.eval()
    with oom_guard(device, f"moving the {role} model to the device"):
        model.to(device)
    return model
