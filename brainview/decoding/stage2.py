"""Stage 2: contrastive tuning of the stage-1 brain model (the paper's eq. 1), with Lightning.

The brain model is the stage-1 linear map (ridge weights as the starting point) and a new text
projection ``query_dim -> text_dim``. The loss is

    L = λ1 · MSE(b, i) + λ2 · InfoNCE(b, t) + λ3 · InfoNCE(i, t)

with b the brain-predicted query tokens, i the stimulus' target query tokens (the stage-1
targets) and t the text embedding of one of the trial's captions. Both InfoNCE terms use BLIP-2's
image-text contrastive (ITC) score, the one retrieval uses (``retrieval.text_scores``,
``BrainModel.project_text``): tokens go through the projection, are L2-normalized per token, and
the score with a normalized text embedding is the maximum over query tokens; the loss is the
symmetric in-batch cross-entropy of CLIP. The defaults 0.7 / 0.15 / 0.15 are those of the
paper's code.

What is trained, and why it differs from the paper's code: the paper also fine-tunes the BLIP-2
Q-Former text path. Here the text embeddings and image tokens are fixed inputs (computed once by
the retrieval model, as the bundle stores them), so the trainable parts are the brain weights,
the projection and the temperature; the image-text term then trains the shared projection on
clean image tokens, which guides it while the brain term is still noisy. The brain weights get a
much smaller learning rate than the new, randomly initialized projection (the paper's code uses
lr/5; here 1e-4 against 1e-2): the ridge solution is already the regularized MSE optimum, Adam
moves every weight by about ``brain_lr`` per step whatever its scale, and larger steps overfit
the training trials (validation MSE rises) faster than the text alignment gains.

Temperature: CLIP's learnable logit scale, ``exp(s)`` clamped to at most 100, starting at
1/``temperature`` (BLIP-2 starts at 0.07); with ``learn_temperature=False`` it stays fixed.

Model selection uses the validation split only: the module is validated before training and
after every epoch, early stopping watches ``monitor`` (``val_loss``, the eq. 1 loss on the
validation set, or ``val_text_top1``, brain->text top-1 over the whole validation set), and the
best state is kept in memory (no checkpoint files, no logger directories). The test split is not
an argument of :func:`fit_stage2`.
"""

from __future__ import annotations

import copy
import logging
import math
import sys
import tempfile
import warnings
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, EarlyStopping
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

MONITORS = {"val_loss": "min", "val_text_top1": "max"}
MAX_LOGIT_SCALE = 100.0


@dataclass
class Stage2Config:
    """Hyper-parameters of stage 2; the lambdas are eq. 1's weights."""

    lambda_mse: float = 0.7
    lambda_brain_text: float = 0.15
    lambda_image_text: float = 0.15
    lr: float = 1e-2  # the new projection and the temperature
    brain_lr: float = 1e-4  # the stage-1 weights: small, see the module docstring
    weight_decay: float = 0.0
    batch_size: int = 128
    max_epochs: int = 50
    patience: int = 5
    monitor: str = "val_loss"
    temperature: float = 0.07
    learn_temperature: bool = True
    gradient_clip: float | None = 1.0
    seed: int = 0
    accelerator: str = "auto"  # Lightning's: "cpu", "gpu", "mps", "auto"
    precision: str = "32-true"
    verbose: bool = False  # one summary line per epoch on stderr

    def __post_init__(self):
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {sorted(MONITORS)}, got {self.monitor!r}")
        if min(self.lambda_mse, self.lambda_brain_text, self.lambda_image_text) < 0:
            raise ValueError("the loss weights (lambdas) must be non-negative")
        if not 0 < self.temperature < 1:
            raise ValueError(f"temperature must lie in (0, 1), got {self.temperature}")


@dataclass
class Stage2Result:
    """Stage-2 weights in the bundle layout (DESIGN.md §3) and the per-epoch record."""

    weight: np.ndarray  # (n_query * query_dim, n_voxels)
    bias: np.ndarray  # (n_query * query_dim,)
    projection_weight: np.ndarray  # (text_dim, query_dim)
    projection_bias: np.ndarray  # (text_dim,)
    history: list[dict] = field(default_factory=list)  # one entry per validation; epoch -1 is the start
    best_epoch: int = -1
    temperature: float = 0.07

    def tensors(self) -> dict[str, np.ndarray]:
        """The stage-2 entries of ``brain_model.safetensors``."""
        return {"stage2.weight": self.weight, "stage2.bias": self.bias,
                "stage2.projection.weight": self.projection_weight,
                "stage2.projection.bias": self.projection_bias}


def itc_scores(projected: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """BLIP-2 ITC score: per-token-normalized (b, q, t) against normalized (m, t) -> (b, m), max over q."""
    return torch.einsum("bqt,mt->bmq", projected, texts).amax(dim=-1)


def symmetric_info_nce(scores: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """CLIP's loss: mean of the row-wise and column-wise cross-entropy with the diagonal as target."""
    logits = scores * logit_scale
    target = torch.arange(len(scores), device=scores.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


class Stage2Module(L.LightningModule):
    """Brain linear map (from stage 1) + text projection + temperature, trained with eq. 1."""

    def __init__(self, stage1_weight: np.ndarray, stage1_bias: np.ndarray, n_query: int, text_dim: int,
                 config: Stage2Config):
        super().__init__()
        n_out, n_voxels = stage1_weight.shape
        if n_out % n_query:
            raise ValueError(f"stage-1 weight has {n_out} outputs, not a multiple of n_query={n_query}")
        self.config = config
        self.n_query, self.query_dim = n_query, n_out // n_query
        self.brain = nn.Linear(n_voxels, n_out)
        with torch.no_grad():
            self.brain.weight.copy_(torch.as_tensor(np.asarray(stage1_weight, dtype=np.float32)))
            self.brain.bias.copy_(torch.as_tensor(np.asarray(stage1_bias, dtype=np.float32)))
        self.projection = nn.Linear(self.query_dim, text_dim)
        initial_scale = torch.tensor(math.log(1.0 / config.temperature))
        if config.learn_temperature:
            self.log_logit_scale = nn.Parameter(initial_scale)
        else:
            self.register_buffer("log_logit_scale", initial_scale)
        self.caption_generator = torch.Generator().manual_seed(config.seed)
        self.history: list[dict] = []
        self._train_losses: list[float] = []
        self._val_outputs: list[tuple[dict, int, torch.Tensor, torch.Tensor]] = []

    # ----------------------------------------------------------------- model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Brain-predicted query tokens (b, n_query, query_dim)."""
        return self.brain(x).view(len(x), self.n_query, self.query_dim)

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """Projection into the text space, L2-normalized per token (as ``BrainModel.project_text``)."""
        return F.normalize(self.projection(tokens), dim=-1)

    def logit_scale(self) -> torch.Tensor:
        return self.log_logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def losses(self, x, image_tokens, texts) -> dict[str, torch.Tensor]:
        brain_tokens = self(x)
        scale = self.logit_scale()
        brain_text = symmetric_info_nce(itc_scores(self.project(brain_tokens), texts), scale)
        image_text = symmetric_info_nce(itc_scores(self.project(image_tokens), texts), scale)
        mse = F.mse_loss(brain_tokens, image_tokens)
        c = self.config
        total = c.lambda_mse * mse + c.lambda_brain_text * brain_text + c.lambda_image_text * image_text
        return {"loss": total, "mse": mse, "brain_text": brain_text, "image_text": image_text}

    # ----------------------------------------------------------------- Lightning hooks

    def _pick_caption(self, texts: torch.Tensor, train: bool) -> torch.Tensor:
        """One caption per trial: (b, t) as given; from (b, k, t) a random one (training) or the first."""
        if texts.ndim == 2:
            return texts
        if not train:
            return texts[:, 0]
        pick = torch.randint(texts.shape[1], (len(texts),), generator=self.caption_generator).to(texts.device)
        return texts[torch.arange(len(texts), device=texts.device), pick]

    def training_step(self, batch, batch_idx):
        x, image_tokens, texts = batch
        losses = self.losses(x, image_tokens.view(len(x), self.n_query, self.query_dim),
                             self._pick_caption(texts, train=True))
        self._train_losses.append(float(losses["loss"].detach()))
        return losses["loss"]

    def validation_step(self, batch, batch_idx):
        x, image_tokens, texts = batch
        texts = self._pick_caption(texts, train=False)
        losses = self.losses(x, image_tokens.view(len(x), self.n_query, self.query_dim), texts)
        self._val_outputs.append(({k: float(v) for k, v in losses.items()}, len(x),
                                  self.project(self(x)).detach(), texts.detach()))

    def on_validation_epoch_end(self):
        """Batch-size-weighted means of the losses, and brain->text top-1 over the whole split."""
        sizes = np.array([n for _, n, _, _ in self._val_outputs], dtype=np.float64)
        metrics = {f"val_{name}": float(np.average([losses[name] for losses, _, _, _ in self._val_outputs],
                                                   weights=sizes))
                   for name in ("loss", "mse", "brain_text", "image_text")}
        projected = torch.cat([p for _, _, p, _ in self._val_outputs])
        texts = torch.cat([t for _, _, _, t in self._val_outputs])
        self._val_outputs.clear()
        scores = itc_scores(projected, texts)
        metrics["val_text_top1"] = float((scores.argmax(dim=1) == torch.arange(len(scores), device=scores.device))
                                         .float().mean())
        for name, value in metrics.items():
            self.log(name, value)
        started = self.trainer.state.fn == "fit"
        entry = {"epoch": self.current_epoch if started else -1,
                 "train_loss": float(np.mean(self._train_losses)) if self._train_losses else float("nan"),
                 **metrics, "temperature": float(1.0 / self.logit_scale().detach())}
        self._train_losses.clear()
        self.history.append(entry)
        if self.config.verbose:
            print("stage 2 epoch {epoch:>3}: train {train_loss:.4f}  val {val_loss:.4f}  mse {val_mse:.4f}  "
                  "brain-text {val_brain_text:.3f}  image-text {val_image_text:.3f}  "
                  "text top-1 {val_text_top1:.3f}  temperature {temperature:.4f}".format(**entry),
                  file=sys.stderr, flush=True)

    def configure_optimizers(self):
        c = self.config
        head = list(self.projection.parameters())
        if isinstance(self.log_logit_scale, nn.Parameter):
            head.append(self.log_logit_scale)
        return torch.optim.AdamW([{"params": self.brain.parameters(), "lr": c.brain_lr},
                                  {"params": head, "lr": c.lr}], weight_decay=c.weight_decay)


class _KeepBest(Callback):
    """Keeps, in memory, a copy of the state with the best monitored validation metric."""

    def __init__(self, monitor: str):
        self.monitor, self.mode = monitor, MONITORS[monitor]
        self.best_value: float | None = None
        self.best_state: dict | None = None
        self.best_epoch = -1

    def on_validation_end(self, trainer, module):
        entry = module.history[-1]
        value = entry[self.monitor]
        better = self.best_value is None or (value < self.best_value if self.mode == "min" else value > self.best_value)
        if better:
            self.best_value, self.best_epoch = value, entry["epoch"]
            self.best_state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def _as_float_tensor(array, name: str, ndim: tuple[int, ...]) -> torch.Tensor:
    arr = np.asarray(array)
    if arr.ndim not in ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim))} dimensions, got shape {arr.shape}")
    return torch.as_tensor(np.ascontiguousarray(arr, dtype=np.float32))


def _dataset(X, tokens, texts, split: str, n_voxels: int, n_out: int, text_dim: int | None) -> TensorDataset:
    X = _as_float_tensor(X, f"X_{split}", (2,))
    tokens = _as_float_tensor(tokens, f"tokens_{split}", (2, 3)).reshape(len(tokens), -1)
    texts = F.normalize(_as_float_tensor(texts, f"texts_{split}", (2, 3)), dim=-1)
    if X.shape[1] != n_voxels:
        raise ValueError(f"X_{split} has {X.shape[1]} voxels, the stage-1 weight {n_voxels}")
    if tokens.shape[1] != n_out:
        raise ValueError(f"tokens_{split} have {tokens.shape[1]} values per trial, the stage-1 weight {n_out} outputs")
    if not len(X) == len(tokens) == len(texts):
        raise ValueError(f"{split} split: {len(X)} patterns, {len(tokens)} token sets and {len(texts)} texts differ")
    if text_dim is not None and texts.shape[-1] != text_dim:
        raise ValueError(f"texts_{split} have dimension {texts.shape[-1]}, texts_train {text_dim}")
    return TensorDataset(X, tokens, texts)


def fit_stage2(stage1_weight, stage1_bias, X_train, tokens_train, texts_train, X_val, tokens_val, texts_val,
               config: Stage2Config | None = None) -> Stage2Result:
    """Tune the stage-1 weights with eq. 1 and learn the text projection; select on validation.

    ``tokens_*``: (n, n_query, query_dim) target query tokens. ``texts_*``: normalized text
    embeddings, either (n, text_dim), one caption per trial, or (n, k, text_dim), k captions per
    trial of which training draws one at random per trial and step (validation uses the first).
    Deterministic for a given ``config.seed`` on a given device.
    """
    config = config or Stage2Config()
    stage1_weight = np.asarray(stage1_weight, dtype=np.float32)
    n_out, n_voxels = stage1_weight.shape
    tokens_shape = np.shape(tokens_train)
    if len(tokens_shape) != 3:
        raise ValueError(f"tokens_train must be (n, n_query, query_dim), got shape {tokens_shape}")
    n_query = tokens_shape[1]
    train = _dataset(X_train, tokens_train, texts_train, "train", n_voxels, n_out, None)
    text_dim = train.tensors[2].shape[-1]
    val = _dataset(X_val, tokens_val, texts_val, "val", n_voxels, n_out, text_dim)
    if len(train) < 2 or len(val) < 2:
        raise ValueError("stage 2 needs at least 2 training and 2 validation trials (in-batch contrast)")

    L.seed_everything(config.seed, workers=True, verbose=False)
    module = Stage2Module(stage1_weight, np.asarray(stage1_bias, dtype=np.float32), n_query, text_dim, config)
    batch_size = min(config.batch_size, len(train))
    train_loader = DataLoader(train, batch_size=batch_size, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(config.seed))
    val_loader = DataLoader(val, batch_size=config.batch_size, shuffle=False)
    keeper = _KeepBest(config.monitor)
    stopper = EarlyStopping(monitor=config.monitor, mode=MONITORS[config.monitor], patience=config.patience)
    with tempfile.TemporaryDirectory(prefix="brainview-stage2-") as tmp, _quiet_lightning():
        trainer = L.Trainer(accelerator=config.accelerator, devices=1, max_epochs=config.max_epochs,
                            precision=config.precision, gradient_clip_val=config.gradient_clip,
                            callbacks=[keeper, stopper], logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                            deterministic=True, default_root_dir=tmp)
        trainer.validate(module, val_loader, verbose=False)  # the starting point competes too
        trainer.fit(module, train_loader, val_loader)
    module.load_state_dict(keeper.best_state)
    state = {k: v.numpy() for k, v in keeper.best_state.items()}
    return Stage2Result(weight=state["brain.weight"].copy(), bias=state["brain.bias"].copy(),
                        projection_weight=state["projection.weight"].copy(),
                        projection_bias=state["projection.bias"].copy(),
                        history=copy.deepcopy(module.history), best_epoch=keeper.best_epoch,
                        temperature=float(1.0 / module.logit_scale().detach()))


class _quiet_lightning:
    """Silence Lightning's start-up banner and its advice about data-loader workers."""

    _loggers = ("lightning.pytorch", "lightning.fabric", "lightning")

    def __enter__(self):
        self._levels = [(logging.getLogger(n), logging.getLogger(n).level) for n in self._loggers]
        for log, _ in self._levels:
            log.setLevel(logging.WARNING)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        warnings.filterwarnings("ignore", message=".*treespec, LeafSpec.*")
        return self

    def __exit__(self, *exc):
        self._warnings.__exit__(*exc)
        for log, level in self._levels:
            log.setLevel(level)
        return False


__all__ = ["Stage2Config", "Stage2Module", "Stage2Result", "fit_stage2", "itc_scores", "symmetric_info_nce",
           "MONITORS"]
