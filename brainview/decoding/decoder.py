"""One decoding pipeline for the command line and the app: pattern → tokens → caption + retrievals,
and answers to questions about a pattern (BLIP-2's prompt after the same tokens).

``Decoder`` joins a bundle's brain model with its BLIP-2 models. When the language models cannot
be loaded it still retrieves, and says why captions are off (``captions_missing``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from brainview.bundle import Bundle
from brainview.decoding.brain_model import BrainModel
from brainview.decoding.questions import Turn, question_prompt
from brainview.decoding.retrieval import Ranked, image_scores, text_scores, top_k
from brainview.decoding.synthetic import synthetic_tokens
from brainview.decoding.vectors import unit_norm
from brainview.errors import UserError


@dataclass
class Decoded:
    """What one pattern decodes to: the caption (or why there is none) and the top-k retrievals."""

    stage: str
    caption: str | None
    images: Ranked
    texts: Ranked | None  # indices into the bundle's text embeddings (stage 2 only)
    image_profile: np.ndarray = field(repr=False)  # similarity to every test image

    def caption_text(self, bundle: Bundle, text_rank: int) -> str:
        trial, caption = bundle.text_index[self.texts.indices[text_rank]]
        return bundle.captions[trial][caption]


class Decoder:
    def __init__(self, bundle: Bundle, adapter=None, captions_missing: str | None = None):
        self.bundle = bundle
        self.model = BrainModel.from_bundle(bundle)
        self.adapter = adapter
        self._stop = threading.Event()  # set by cancel(): captioning in flight ends at its next token
        self.captions_missing = captions_missing if adapter is None or not adapter.has_captioner else None
        if self.adapter is None and self.captions_missing is None:
            self.captions_missing = "no language model was loaded"
        # predicted tokens: every trial's once predicted (or from the bundle's cache), else the few asked for so far
        self._all_tokens: dict[str, np.ndarray] = {}
        self._some_tokens: dict[tuple[str, int], np.ndarray] = {}
        self._remember_lock = threading.Lock()
        self._unit_targets: np.ndarray | None = None
        self._column_sums: dict[tuple[str, bytes], np.ndarray] = {}  # (stage, voxel ids) -> column sum
        self._last_sum: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # stage -> the latest (voxels, sum)
        self._rois_summed: set[str] = set()  # stages whose atlas ROI column sums are known

    @classmethod
    def load(cls, bundle: Bundle, device: str = "auto", load_language_models: bool = True,
             progress=None, cpu_precision: str | None = None) -> "Decoder":
        """Load the bundle's captioner, only the parts captioning from tokens runs (``progress(done,
        total, what)`` per checkpoint shard), or share the one already loaded from the same files on
        the same device (on a CPU in ``cpu_precision``, by default int8); a model that cannot be had turns captions off, with the reason. On a GPU the brain model's weights go there too, once, in half precision.

        Raises ``DeviceOutOfMemory`` when the device is full, so the caller can retry on the CPU.
        """
        if not load_language_models:
            return cls(bundle, None, "language models were not requested")
        vlm = bundle.vlm
        if not vlm.get("captioner"):
            return cls(bundle, None, "the bundle names no captioner model")
        from brainview.decoding.blip2 import Blip2Adapter, DeviceOutOfMemory
        from brainview.decoding.cpu_precision import check_cpu_precision
        from brainview.decoding.device import resolve_device
        from brainview.decoding.shared_models import model_identity, shared

        try:
            # an in-bundle folder (absolute) or a model id looked up in the local cache only
            captioner = bundle.resolve_model(vlm["captioner"])
            precision = check_cpu_precision(cpu_precision)
            key = (model_identity(captioner), str(resolve_device(device)), "caption", precision)
            loaded_now = []

            def load_now():
                loaded_now.append(True)
                return Blip2Adapter.load(captioner=captioner, retrieval=None, device=device, local=False,
                                         parts="caption", progress=progress, cpu_precision=precision)

            adapter = shared(key, load_now)
            if not loaded_now and progress is not None:
                progress(1, 1, "the language model is already loaded")
            adapter.prompt_ids(vlm["prompt"] or "")
        except DeviceOutOfMemory:
            raise  # a full GPU is the caller's to handle (retry on the CPU), not a missing model
        except UserError as exc:
            return cls(bundle, None, str(exc))
        decoder = cls(bundle, adapter)
        if adapter.device.type == "cuda":
            from brainview.decoding.device import oom_guard

            with oom_guard(adapter.device, "moving the brain model to the GPU"):
                decoder.model.to(adapter.device)
        return decoder

    @property
    def unit_targets(self) -> np.ndarray:
        """The test images' target tokens, flattened and L2-normalized once (96 MB at NSD size, which
        each retrieval would otherwise normalize again)."""
        if self._unit_targets is None:
            targets = self.bundle.image_embeddings
            self._unit_targets = unit_norm(np.asarray(targets, dtype=np.float32).reshape(len(targets), -1))
        return self._unit_targets

    @property
    def stages(self) -> list[str]:
        return list(self.model.stages)

    @property
    def can_caption(self) -> bool:
        return self.captions_missing is None

    def cancel(self) -> None:
        """Stop captioning: calls in flight raise :class:`~brainview.errors.Cancelled` within a token."""
        self._stop.set()

    def resume(self) -> None:
        """Caption again after :meth:`cancel` (the bundle is shown again)."""
        self._stop.clear()

    def tokens_for_trials(self, trials, stage: str) -> np.ndarray:
        """Predicted tokens (n, n_query, query_dim) of test trials, float32, from the cache where it has them."""
        trials = np.atleast_1d(np.asarray(trials, dtype=np.int64))
        if stage in self._all_tokens:  # float16 when it is the bundle's prediction cache
            return np.asarray(self._all_tokens[stage][trials], dtype=np.float32)
        if trials.size == 1 and (stage, int(trials[0])) in self._some_tokens:
            return self._some_tokens[stage, int(trials[0])][None]
        tokens = self.model.predict(self.bundle.fmri[trials], stage=stage)
        if trials.size == 1:
            self._remember_trial(stage, int(trials[0]), tokens[0])
        return tokens

    def has_tokens(self, trial: int, stage: str) -> bool:
        """Whether the trial's tokens are at hand (retrieving it is instant), or need a prediction pass."""
        return stage in self._all_tokens or (stage, int(trial)) in self._some_tokens

    def predict_trial(self, trial: int, stages: Sequence[str]) -> int:
        """Predict and keep one trial's tokens for ``stages`` (slow at NSD size: a worker's job);
        returns the trial."""
        for stage in stages:
            self.tokens_for_trials([trial], stage)
        return trial

    def _remember_trial(self, stage: str, trial: int, tokens: np.ndarray) -> None:
        """Keep the latest 64 trials looked at before every trial is predicted (the oldest goes first)."""
        with self._remember_lock:  # workers predicting trials may remember at the same time
            self._some_tokens.pop((stage, trial), None)
            if len(self._some_tokens) >= 64:
                del self._some_tokens[next(iter(self._some_tokens))]
            self._some_tokens[stage, trial] = tokens

    def iter_predict(self, trials, stage: str, remember: int | None = None):
        """Tokens (n, n_query, query_dim) of ``trials`` in one pass over the stage's weights (long at
        NSD size: a worker's job), as a generator that yields ``(done, total)`` weight rows.

        The atlas ROIs' indicator patterns ride along in the first pass of a stage (a few rows more):
        their column sums make checking an ROI for live decoding instant. ``remember``: a trial
        among ``trials`` whose tokens are kept for :meth:`tokens_for_trials`.
        """
        trials = np.atleast_1d(np.asarray(trials, dtype=np.int64))
        rois = [] if stage in self._rois_summed else [
            np.unique(np.asarray(spec["voxels"], dtype=np.int64)) for spec in self.bundle.rois.values()]
        n = trials.size
        x = np.zeros((n + len(rois), self.bundle.n_voxels), dtype=np.float32)
        x[:n] = self.bundle.fmri[trials] if n else 0.0
        for row, voxels in enumerate(rois, start=n):
            x[row, voxels] = 1.0
        out = yield from self.model.iter_predict(x, stage)
        bias = self.model.stage(stage).bias
        for row, voxels in enumerate(rois, start=n):
            self._remember_sum(stage, voxels, out[row].reshape(-1) - bias)
        self._rois_summed.add(stage)
        if remember is not None:
            self._remember_trial(stage, int(remember), out[int(np.flatnonzero(trials == remember)[0])])
        return out[:n]

    def iter_sum_rois(self, stage: str):
        """The atlas ROIs' column sums alone (one pass over the stage's weights, yielding as
        :meth:`iter_predict`), where no prediction pass brought them (a verified prediction cache)."""
        if stage not in self._rois_summed and self.bundle.rois:
            yield from self.iter_predict(np.empty(0, dtype=np.int64), stage)

    def iter_predict_all(self, stage: str):
        """Every test trial's tokens for ``stage`` (:meth:`iter_predict`), then cached."""
        if stage not in self._all_tokens:
            tokens = yield from self.iter_predict(np.arange(self.bundle.n_trials), stage)
            self.keep_tokens(stage, tokens)
        return self._all_tokens[stage]

    def column_sum(self, stage: str, voxels: np.ndarray) -> np.ndarray:
        """``weight[:, voxels].sum(axis=1)`` (n_out,), what an ROI's synthetic pattern needs: cached
        per voxel set (the atlas ROIs' come with a stage's first :meth:`iter_predict`), else updated from the
        stage's previous selection by the voxels added and removed (a brush dab reads a few
        columns, not every selected one)."""
        voxels = np.unique(np.asarray(voxels, dtype=np.int64))
        cached = self._column_sums.get((stage, voxels.tobytes()))
        if cached is not None:
            self._last_sum[stage] = (voxels, cached)
            return cached
        lin = self.model.stage(stage)
        last = self._last_sum.get(stage)
        total = None
        if last is not None:
            added = np.setdiff1d(voxels, last[0], assume_unique=True)
            removed = np.setdiff1d(last[0], voxels, assume_unique=True)
            if added.size + removed.size < voxels.size:
                total = last[1] + lin.columns(added).sum(axis=1) - lin.columns(removed).sum(axis=1)
        if total is None:
            total = lin.columns(voxels).sum(axis=1)
        self._remember_sum(stage, voxels, total)
        return total

    def _remember_sum(self, stage: str, voxels: np.ndarray, total: np.ndarray) -> None:
        if len(self._column_sums) >= 256:
            self._column_sums.pop(next(iter(self._column_sums)))
        self._column_sums[stage, voxels.tobytes()] = total
        self._last_sum[stage] = (voxels, total)

    def keep_tokens(self, stage: str, tokens: np.ndarray) -> None:
        """Cache every trial's tokens for ``stage`` (predicted in a worker by another decoder, perhaps, or
        the bundle's prediction cache, memory-mapped)."""
        if tokens.shape != (self.bundle.n_trials, self.bundle.n_query, self.bundle.query_dim):
            raise ValueError(f"expected tokens for all {self.bundle.n_trials} trials, got shape {tokens.shape}")
        self._all_tokens[stage] = tokens

    def has_all_tokens(self, stage: str) -> bool:
        return stage in self._all_tokens

    def tokens_of_all(self, stage: str) -> np.ndarray:
        """Every trial's tokens as cached (:meth:`keep_tokens`), in their stored dtype."""
        return self._all_tokens[stage]

    def share_predictions(self, other: "Decoder") -> None:
        """Reuse another decoder's predicted tokens (the same bundle with other language models)."""
        if other is not None and other.bundle is self.bundle:
            self._all_tokens.update(other._all_tokens)
            self._some_tokens.update(other._some_tokens)
            self._unit_targets = other._unit_targets
            self._column_sums.update(other._column_sums)
            self._rois_summed |= other._rois_summed

    def synthetic(self, mode: str, voxels: np.ndarray, stage: str, *, scale: float | None = None,
                  trial: int | None = None, factor: float = 3.0) -> np.ndarray:
        pattern = None if trial is None else np.asarray(self.bundle.fmri[trial], dtype=np.float32)
        base = None if trial is None else self.tokens_for_trials([trial], stage)[0]
        summed = self.column_sum(stage, voxels) if mode == "roi" and np.size(voxels) else None
        return synthetic_tokens(self.model, mode, voxels, stage=stage,
                                scale=self.bundle.synthetic_scale if scale is None else scale,
                                pattern=pattern, factor=factor, base=base, summed=summed)

    def generate(self, tokens: np.ndarray, prompts: str | Sequence[str], *, max_new_tokens: int | None = None,
                 num_beams: int | None = None, batch_size: int = 16, progress=None,
                 superseded: Callable[[], bool] | None = None,
                 on_text: Callable[[str], None] | None = None) -> list[str]:
        """Text generated from query tokens (n, n_query, query_dim) after a prompt (one, or one each);
        the bundle's ``max_new_tokens`` / ``num_beams`` unless given; on a CPU greedy unless beams are asked
        for (each beam multiplies the time of a token, which a CPU spends reading every weight).

        Raises :class:`~brainview.errors.Cancelled` within a token of :meth:`cancel`, or of
        ``superseded()`` turning True (a newer selection: nobody waits for this text any more)."""
        if not self.can_caption:
            raise UserError(f"captions are off: {self.captions_missing}")
        vlm = self.bundle.vlm
        prompts = [prompts] * len(tokens) if isinstance(prompts, str) else list(prompts)
        max_new_tokens = int(vlm["max_new_tokens"] if max_new_tokens is None else max_new_tokens)
        if num_beams is None:
            num_beams = 1 if self.adapter.device.type == "cpu" else int(vlm["num_beams"])
        stop = self._stop.is_set if superseded is None else (lambda: self._stop.is_set() or superseded())
        out: list[str] = []
        for start in range(0, len(tokens), batch_size):
            end = start + batch_size
            out += self.adapter.caption(np.asarray(tokens[start:end]), prompt=prompts[start:end],
                                        max_new_tokens=max_new_tokens, num_beams=num_beams, batch_size=batch_size,
                                        stop=stop, on_text=on_text)
            if progress is not None:
                progress(min(end, len(tokens)), len(tokens))
        return out

    def captions(self, tokens: np.ndarray, batch_size: int = 16, progress=None,
                 superseded: Callable[[], bool] | None = None,
                 on_text: Callable[[str], None] | None = None) -> list[str]:
        """Captions for query tokens (n, n_query, query_dim), with the bundle's generation settings
        (``on_text``: the text so far after each token, for one greedy caption)."""
        return self.generate(tokens, self.bundle.vlm["prompt"] or "", batch_size=batch_size, progress=progress,
                             superseded=superseded, on_text=on_text)

    def question_prompt(self, question: str, history: Sequence[Turn] = ()) -> str:
        """The bundle's question prompt after the dialogue so far (capped in turns and in tokens)."""
        if not self.can_caption:
            raise UserError(f"questions cannot be answered: {self.captions_missing}")
        if not str(question).strip():
            raise UserError("the question is empty")
        vlm = self.bundle.vlm
        budget = self.adapter.max_prompt_tokens
        return question_prompt(question, history, template=vlm["question_prompt"], max_turns=int(vlm["dialogue_turns"]),
                               fits=lambda text: self.adapter.count_tokens(text) <= budget)

    def answers(self, tokens: np.ndarray, questions: Sequence[str], histories: Sequence[Sequence[Turn]] | None = None,
                *, num_beams: int | None = None, max_new_tokens: int | None = None, batch_size: int = 16,
                progress=None, superseded: Callable[[], bool] | None = None,
                on_text: Callable[[str], None] | None = None) -> list[str]:
        """One answer per (tokens, question), each after its dialogue history (none by default); ``superseded``
        and ``on_text`` (the answer so far after each token, for one greedy answer) as in :meth:`generate`."""
        if len(questions) != len(tokens) or (histories is not None and len(histories) != len(tokens)):
            raise UserError(f"{len(questions)} questions for {len(tokens)} sets of query tokens")
        histories = histories if histories is not None else [()] * len(questions)
        prompts = [self.question_prompt(q, h) for q, h in zip(questions, histories)]
        limit = int(self.bundle.vlm["max_answer_tokens"] if max_new_tokens is None else max_new_tokens)
        return self.generate(tokens, prompts, max_new_tokens=limit, num_beams=num_beams, batch_size=batch_size,
                             progress=progress, superseded=superseded, on_text=on_text)

    def decode(self, tokens: np.ndarray, stage: str, k: int = 5, caption: bool = True) -> Decoded:
        """Caption and top-k image/caption retrieval for one set of query tokens (n_query, query_dim)."""
        profile = image_scores(tokens[None], self.unit_targets, unit_targets=True)[0]
        texts = None
        if stage == "stage2" and self.model.has_text_projection:
            projected = self.model.project_text(tokens[None])
            texts = top_k(text_scores(projected, self.bundle.text_embeddings)[0], k)
        text = self.captions(tokens[None])[0] if caption and self.can_caption else None
        return Decoded(stage, text, top_k(profile, k), texts, profile)
