"""The one command that rebuilds the demo bundle from nothing (DESIGN.md §7, issue 3).

``python -m training.demo_world build --out resources/demo --seed 0 [--size full|small]``

Steps, each reported on stderr with the elapsed time:

1. scenes: :func:`training.demo_world.scenes.split_scenes` (train / val / test, split by image);
2. tiny BLIP-2 models trained on the training scenes
   (``training.demo_world.vlm.train_demo_vlm(train, val, out_dir, seed, size) -> {"captioner",
   "retrieval"}``), or random ones with ``vlm="random"`` (a quick check of the pipeline);
3. targets: the captioner's query tokens of every image (``Blip2Adapter.image_query_tokens``)
   and the retrieval model's text embeddings of every caption (``text_embeddings``);
4. fMRI: the virtual subject's responses (3 repeats averaged), z-scored per voxel with the
   training split's mean and standard deviation; the test split's single trials too (:func:`single_trials`,
   ``test/fmri_repeats.npy``; ``python -m training.demo_world repeats --bundle B`` adds them to a built bundle);
5. stage 1: :class:`~brainview.decoding.ridge.StageOneRidge`, alpha chosen on the validation split;
6. stage 2: :func:`~brainview.decoding.stage2.fit_stage2` (eq. 1), selected on the validation split;
7. the bundle: :func:`~brainview.bundle.write_bundle` with the test split, its held-out
   question-answer set (:func:`training.demo_world.questions.question_set`), the cortex and the
   models, then evaluated exactly as ``brainview eval`` / ``brainview roi-table`` do, the
   figures (QA accuracy per question type included) written into the manifest's ``metrics``.

The test split is touched only by the final evaluation. The two stages' weights are stored as
float16 (the reader accepts any float and computes in float32): n_query x query_dim x n_voxels
per stage is most of the bundle, and float16 keeps it within the 30 MB budget.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from training.demo_world.questions import question_set
from training.demo_world.scenes import SPLIT_SIZES, SceneSet, split_scenes
from training.demo_world.subject import VOXEL_MM, VirtualSubject

REPEATS = 3
SIZES = tuple(SPLIT_SIZES)
VLM_KINDS = ("trained", "random")
BUNDLE_LIMIT_BYTES = 30 * 1024 * 1024
STAGE2_MAX_EPOCHS = {"full": 50, "small": 8}  # the small build only has to run the same code quickly


class _Progress:
    """One line per step on stderr with the time since the build started; keeps the timings."""

    def __init__(self):
        self.start = time.perf_counter()
        self.last = self.start
        self.timings: dict[str, float] = {}

    def __call__(self, step: str, message: str) -> None:
        now = time.perf_counter()
        self.timings[step] = round(now - self.last, 1)
        self.last = now
        print(f"[demo build {now - self.start:7.1f} s] {step}: {message}", file=sys.stderr, flush=True)

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self.start, 1)


def build(out: str | Path, seed: int = 0, size: str = "full", vlm: str = "trained", overwrite: bool = True) -> Path:
    """Build the demo bundle into ``out`` and return its path; see the module docstring."""
    import torch

    from brainview.bundle import open_bundle
    from brainview.decoding.blip2 import Blip2Adapter

    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    if vlm not in VLM_KINDS:
        raise ValueError(f"vlm must be one of {VLM_KINDS}, got {vlm!r}")
    out = Path(out)
    progress = _Progress()
    torch.manual_seed(seed)
    splits = split_scenes(seed, size)
    progress("scenes", ", ".join(f"{k} {len(v)}" for k, v in splits.items()))

    with tempfile.TemporaryDirectory(prefix="brainview-demo-") as work:
        folders = _vlm_folders(vlm, splits, Path(work) / "vlm", seed, size)
        progress("vlm", f"{vlm} tiny BLIP-2 models in {work}")
        adapter = Blip2Adapter.load(folders["captioner"], folders["retrieval"], device="cpu")
        tokens = {k: adapter.image_query_tokens(v.images) for k, v in splits.items()}
        texts = {k: _caption_embeddings(adapter, v) for k, v in splits.items()}
        n_query, query_dim = tokens["train"].shape[1:]
        text_dim = texts["train"].shape[-1]
        progress("targets", f"query tokens {n_query}x{query_dim}, text embeddings {text_dim}")

        subject = VirtualSubject.create(seed)
        test = splits["test"]
        write_subject_bundle(
            out, subject, splits, tokens, texts, progress, seed=seed, size=size,
            name=f"Demo world: virtual subject on fsaverage5, tiny BLIP-2 ({size}, seed {seed})",
            subject_id=f"virtual-{seed}", vlm_folders=folders, provenance={"vlm": vlm},
            trials=[{"id": f"demo-{i:04d}", "scene": a, "repeats": REPEATS} for i, a in enumerate(test.attributes)],
            questions=question_set(test, seed), overwrite=overwrite)
    progress("bundle", f"{out} ({_folder_bytes(out) / 2 ** 20:.1f} MB)")

    metrics = evaluate(out)
    progress("evaluate", json.dumps(_headline(metrics)))
    n_bytes = _folder_bytes(out)
    _update_manifest(out, metrics=metrics, timings={**progress.timings, "total": progress.total},
                     bundle_bytes=n_bytes)
    open_bundle(out)
    if n_bytes > BUNDLE_LIMIT_BYTES:
        print(f"warning: the bundle is {n_bytes / 2 ** 20:.1f} MB, over the 30 MB budget", file=sys.stderr)
    return out


def write_subject_bundle(out: Path, subject: VirtualSubject, splits: dict[str, SceneSet], tokens: dict, texts: dict,
                         progress, *, seed: int, size: str, name: str, subject_id: str, vlm_folders: dict,
                         trials: list[dict], provenance: dict | None = None, questions=None,
                         overwrite: bool = True, feature_maps: dict | None = None):
    """Steps 4-7 for one virtual subject: its fMRI, stage 1, stage 2 and the bundle (not yet evaluated).

    ``tokens`` / ``texts``: the targets of every split (query tokens, caption embeddings (n, 5, d)).
    The demo build runs it once; the demo study (``study.py``) once per extra subject, on the same
    scenes and targets; ``feature_maps`` (per split, :func:`~training.demo_world.subject.image_feature_maps`)
    spares each subject recomputing what depends on the images alone.
    """
    from brainview.bundle import make_manifest, write_bundle
    from brainview.decoding.ridge import StageOneRidge
    from brainview.decoding.stage2 import Stage2Config, fit_stage2

    raw = {k: subject.respond(v, repeats=REPEATS, rng=np.random.default_rng([seed, 303, i]),
                              maps=(feature_maps or {}).get(k))
           for i, (k, v) in enumerate(splits.items())}
    mean, sd = raw["train"].mean(0), raw["train"].std(0) + 1e-6
    fmri = {k: ((v - mean) / sd).astype(np.float32) for k, v in raw.items()}
    test_fmri = fmri["test"].astype(np.float16)
    test_noise = subject.trial_noise(len(splits["test"]), REPEATS,
                                     np.random.default_rng([seed, 303, list(splits).index("test")]))
    repeats = single_trials(test_fmri, test_noise, sd)
    progress("fmri", f"{subject.n_voxels} voxels, {REPEATS} repeats averaged (each kept for the test split), "
                     f"median ncsnr {float(np.median(subject.tuning['ncsnr'])):.2f}")

    ridge = StageOneRidge(device="cpu").fit(fmri["train"], tokens["train"], fmri["val"], tokens["val"])
    progress("stage1", f"ridge alphas {sorted({float(a) for a in ridge.alpha_})}")

    stage2 = fit_stage2(ridge.weight_, ridge.bias_, fmri["train"], tokens["train"], texts["train"],
                        fmri["val"], tokens["val"], texts["val"],
                        Stage2Config(seed=seed, accelerator="cpu", max_epochs=STAGE2_MAX_EPOCHS[size]))
    progress("stage2", f"best epoch {stage2.best_epoch} of {len(stage2.history) - 1}")

    test = splits["test"]
    n_query, query_dim = tokens["train"].shape[1:]
    text_dim = texts["train"].shape[-1]
    weights = {"stage1.weight": ridge.weight_, "stage1.bias": ridge.bias_, **stage2.tensors()}
    manifest = make_manifest(
        name=name, dataset="demo-world", subject=subject_id, n_voxels=subject.n_voxels, n_query=n_query,
        query_dim=query_dim, text_dim=text_dim,
        vlm={"captioner": "vlm/captioner", "retrieval": "vlm/retrieval"},
        synthetic={"scale": _synthetic_scale(tokens["train"])},
        provenance={
            "builder": "python -m training.demo_world build", "seed": seed, "size": size,
            **(provenance or {}),
            "splits": {k: len(v) for k, v in splits.items()}, "repeats": REPEATS, "voxel_mm": VOXEL_MM,
            "normalization": "z-score per voxel with the training split's statistics, after averaging repeats",
            "median_ncsnr": float(np.median(subject.tuning["ncsnr"])), "git_commit": _git_commit(),
            "stage1_alphas": sorted({float(a) for a in ridge.alpha_}),
            "stage2": {"best_epoch": stage2.best_epoch, "temperature": stage2.temperature,
                       "history": stage2.history},
            "weights_dtype": "float16",
        })
    return write_bundle(
        out, manifest=manifest, weights=weights, fmri=test_fmri, fmri_repeats=repeats, stimuli=test.images,
        captions=test.captions, trials=trials, image_embeddings=tokens["test"],
        text_embeddings=texts["test"].reshape(-1, text_dim),
        text_index=[[t, c] for t in range(len(test)) for c in range(len(test.captions[t]))],
        mesh=with_flatmap(subject.mesh), vertex_voxel=subject.vertex_voxel, rois=subject.rois,
        vlm_folders=vlm_folders, weights_dtype=np.float16, questions=questions, overwrite=overwrite)


def with_flatmap(mesh: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """``mesh`` plus fsaverage5's flatmap from the files inside nilearn (no download): ``flat`` (every
    vertex; the medial wall's lie off the patch) and ``flat_faces`` (the faces the cuts keep)."""
    from nilearn import datasets

    flat = datasets.load_fsaverage("fsaverage5")["flat"]
    out = {}
    for hemi, part in zip(("lh", "rh"), ("left", "right")):
        coords = np.asarray(flat.parts[part].coordinates, dtype=np.float32)
        if coords.shape != mesh[hemi]["pial"].shape:
            raise ValueError(f"nilearn's fsaverage5 flatmap has {len(coords)} vertices in {hemi}, "
                             f"the mesh {len(mesh[hemi]['pial'])}")
        out[hemi] = {**mesh[hemi], "flat": coords, "flat_faces": np.asarray(flat.parts[part].faces, dtype=np.int32)}
    return out


def add_flatmap(bundle: str | Path) -> Path:
    """Add fsaverage5's flatmap to an existing demo bundle's ``cortex/mesh.npz`` in place (atomically),
    without rebuilding the rest; the bundle must open afterwards."""
    from brainview.bundle import open_bundle
    from brainview.bundle.format import MESH

    path = Path(bundle) / MESH
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    mesh = {hemi: {k.split("_", 1)[1]: v for k, v in arrays.items() if k.startswith(hemi + "_")} for hemi in ("lh", "rh")}
    flat = with_flatmap(mesh)
    arrays.update({f"{hemi}_{key}": flat[hemi][key] for hemi in flat for key in ("flat", "flat_faces")})
    staging = path.with_name(".mesh.staging.npz")
    np.savez_compressed(staging, **arrays)
    staging.replace(path)
    open_bundle(bundle)
    return path


def single_trials(mean: np.ndarray, noise: list[np.ndarray], sd: np.ndarray) -> np.ndarray:
    """The z-scored single trials (n, repeats, n_voxels) float16 behind the z-scored mean ``mean``: the mean
    plus each trial's ``noise`` less the noises' mean, over the voxels' ``sd`` (the z-scoring's).

    With the noise :meth:`~training.demo_world.subject.VirtualSubject.trial_noise` redraws from the build's
    generator these are the trials the build averaged; with any other draw of the same Gaussian noise they
    are a draw of the trials given their mean (for Gaussian noise e_i - mean(e) is independent of mean(e)).
    Either way they average to ``mean`` (to float16 rounding), so nothing decoded from the mean changes."""
    e = np.stack(noise, axis=1)
    trials = np.asarray(mean, dtype=np.float32)[:, None, :] + (e - e.mean(axis=1, keepdims=True)) / sd
    return trials.astype(np.float16)


def add_repeats(bundle: str | Path) -> Path:
    """Add the single trials to an existing demo bundle (``test/fmri_repeats.npy``, ``test/fmri_repeat_counts.npy``)
    without rebuilding it: its subject, scenes and fMRI noise are redrawn from the seed in its manifest, the
    training split's response for the z-scoring. Refuses a bundle whose stored mean this does not reproduce
    (another build). The bundle's other files, and so every figure, stay as they are."""
    import os
    import shutil

    from brainview.bundle import open_bundle
    from brainview.bundle import format as F
    from brainview.bundle.writer import write_repeats

    opened = open_bundle(bundle)
    provenance = opened.manifest["provenance"]
    seed, size = int(provenance["seed"]), provenance["size"]
    splits = split_scenes(seed, size)
    subject = VirtualSubject.create(seed)
    if opened.manifest["subject"] != f"virtual-{seed}" or len(splits["test"]) != opened.n_trials:
        raise ValueError(f"{bundle} is not the demo bundle of seed {seed} ({size})")
    rngs = {k: np.random.default_rng([seed, 303, i]) for i, k in enumerate(splits)}
    train = subject.respond(splits["train"], repeats=REPEATS, rng=rngs["train"])
    mean, sd = train.mean(0), train.std(0) + 1e-6
    test = ((subject.respond(splits["test"], repeats=REPEATS, rng=rngs["test"]) - mean) / sd).astype(np.float16)
    stored = np.asarray(opened.fmri, dtype=np.float32)
    error = float(np.abs(test.astype(np.float32) - stored).max())
    if error > 0.01:
        raise ValueError(f"{bundle}: the redrawn responses differ from test/fmri.npy by up to {error:.3g}; "
                         "not this build's bundle")
    noise = subject.trial_noise(opened.n_trials, REPEATS, np.random.default_rng([seed, 303, list(splits).index("test")]))
    repeats = single_trials(stored, noise, sd)
    staging = Path(opened.path) / ".repeats.staging"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "test").mkdir(parents=True)
    try:
        write_repeats(staging, repeats, None, np.float16)
        for rel in (F.FMRI_REPEATS, F.FMRI_REPEAT_COUNTS):
            os.replace(staging / rel, Path(opened.path) / rel)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    open_bundle(bundle)
    return Path(opened.path) / F.FMRI_REPEATS


def _vlm_folders(kind: str, splits: dict[str, SceneSet], folder: Path, seed: int, size: str) -> dict[str, Path]:
    if kind == "trained":
        from training.demo_world.vlm import train_demo_vlm

        return train_demo_vlm(splits["train"], splits["val"], folder, seed, size)
    from brainview.decoding.tiny_vlm import save_tiny_blip2, train_tokenizer

    tokenizer = train_tokenizer(c for caps in splits["train"].captions for c in caps)
    return save_tiny_blip2(folder, tokenizer, seed=seed)


def _caption_embeddings(adapter, scenes: SceneSet) -> np.ndarray:
    """(n, 5, text_dim): the normalized text embedding of every reference caption."""
    flat = [c for caps in scenes.captions for c in caps]
    per_image = len(scenes.captions[0])
    return adapter.text_embeddings(flat).reshape(len(scenes), per_image, -1)


def _synthetic_scale(train_tokens: np.ndarray) -> float:
    """Median per-token distance of the training images' query tokens from their mean token.

    The paper's scale 11 belongs to real BLIP-2 tokens; here the synthetic ROI pattern (bias plus
    a unit direction per token times the scale) moves each token as far from the mean as a real
    stimulus moves it. Not the deviation of *predicted* tokens: ridge shrinks predictions toward
    the mean (median 3.6 against 4.2 for the image tokens of the committed bundle), a property of
    the regression, not of what a stimulus does to the tokens.
    """
    deviation = train_tokens - train_tokens.mean(axis=0)
    return float(np.median(np.linalg.norm(deviation, axis=-1)))


def evaluate(path: str | Path, repeats: int | None = None, seed: int = 42, stages: tuple[str, ...] | None = None,
             captioner: bool = True) -> dict:
    """The figures of ``brainview eval`` (``stages``, default all), ``brainview roi-table`` (stage 2), and
    (``captioner``) the captioner alone on the true query tokens of the test images."""
    from brainview.analysis.evaluation import evaluate_bundle
    from brainview.analysis.tables import roi_captions
    from brainview.bundle import open_bundle
    from brainview.decoding.decoder import Decoder
    from brainview.decoding.metrics import caption_metrics

    bundle = open_bundle(path)
    decoder = Decoder.load(bundle, device="cpu")
    metrics = {stage: evaluate_bundle(bundle, decoder, stage, repeats, seed) for stage in stages or bundle.stages}
    if captioner:
        report = caption_metrics(decoder.captions(bundle.image_embeddings), bundle.captions,
                                 metrics=["meteor", "rouge1", "rougeL", "sentence"])
        metrics["captioner_on_images"] = {k: report.means.get(k) for k in ("meteor", "rouge1", "rougeL", "sentence")}
    metrics["roi_table"] = roi_captions(bundle, decoder, "stage2")
    return metrics


def _headline(metrics: dict) -> dict:
    out = {}
    for stage in ("stage1", "stage2"):
        if stage in metrics:
            out[stage] = {k: round(v["top1"], 3) for k, v in metrics[stage]["retrieval"].items()}
            out[stage]["meteor"] = metrics[stage]["captioning"].get("meteor")
    if "captioner_on_images" in metrics:
        out["captioner_meteor"] = metrics["captioner_on_images"]["meteor"]
    qa = metrics.get("stage2", {}).get("qa") or {}
    out["qa"] = {kind: [round(q["accuracy"], 3), round(q["image_accuracy"], 3), round(q["chance"], 3)]
                 for kind, q in qa.items()}
    return out


def _update_manifest(path: Path, *, metrics: dict, timings: dict, bundle_bytes: int) -> None:
    from brainview.bundle import format as F
    from brainview.bundle.writer import manifest_text

    file = path / F.MANIFEST
    manifest = json.loads(file.read_text(encoding="utf-8"))
    manifest["metrics"] = metrics
    manifest["provenance"]["timings_s"] = timings
    manifest["provenance"]["bundle_bytes"] = bundle_bytes
    file.write_text(manifest_text(manifest), encoding="utf-8")


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
