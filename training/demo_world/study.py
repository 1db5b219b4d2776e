"""The demo study: four virtual subjects who saw the same scenes (issue 16).

``python -m training.demo_world study [--demo resources/demo] [--out FOLDER] [--subjects 4]``

Subject 1 is the embedded demo bundle itself. Subjects 2..N are derived from whatever that bundle
holds at build time: its seed and size give the same scene splits (the test images are checked
against the bundle's), its ``vlm/`` models give the training and validation targets, and its test
embeddings are reused as they are; no language model is trained here. Each extra subject is a
:class:`~training.demo_world.subject.VirtualSubject` with its own :class:`SubjectTraits` (areas
shifted around the published coordinates, its own area size, noise level, voxel grid and mix of
category drives, drawn from the study seed) and its own encoding-model seed; its fMRI is simulated
and stages 1 and 2 fitted by the same code as the demo build (``write_subject_bundle``), then
evaluated (stage 2 and the ROI table).

Why built locally rather than shipped: a subject's two stages of float16 weights are 8.5 MB, so three
more subjects would add about 28 MB to the 19.1 MB in the repository, while building them takes
minutes on a 2-core machine (measured: ``brainview.analysis.demo_study.MEASURED_BUILD_SECONDS``). The
app offers the build in one click (with progress and the time left) and caches the result
(``brainview.analysis.demo_study.demo_study_folder``), rebuilt when the demo bundle changes (its fingerprint
is recorded in ``study.json``). Every subject is a complete version-1 bundle; the parts
that are the same for every subject (stimuli, captions, trials, embeddings, mesh, models) are hard
links to subject 1's files where the file system allows, copies otherwise.
"""

from __future__ import annotations

import filecmp
import json
import os
from pathlib import Path

import numpy as np

from training.demo_world.build import (_caption_embeddings, _folder_bytes, _headline, _Progress, _update_manifest,
                                       evaluate, write_subject_bundle)
from training.demo_world.scenes import split_scenes
from training.demo_world.subject import SubjectTraits, VirtualSubject, image_feature_maps

BUILD_THREADS = 1
SHARED_FILES = ("test/stimuli.npy", "test/captions.json", "test/trials.json", "embeddings/image.npy",
                "embeddings/text.npy", "embeddings/text_index.json", "cortex/mesh.npz")


def subject_seed(study_seed: int, number: int) -> int:
    """The encoding-model seed of subject ``number`` (1-based); subject 1 keeps the study seed (the
    embedded bundle's)."""
    return study_seed if number == 1 else 1000 * study_seed + number - 1


def build_study(out: str | Path, demo: str | Path, n_subjects: int = 4, seed: int | None = None,
                evaluate_subjects: bool = True) -> Path:
    """Build subjects 2..``n_subjects`` next to the demo bundle ``demo`` into ``out``; write
    ``out/study.json`` and return its path.

    Runs torch on one thread (``BUILD_THREADS``): the work is many small matrix products (2,000 trials,
    about 1,000 voxels, 2,048 outputs), where a second intra-op thread gains little on an idle 2-core
    machine and, on a shared one, spins against the other jobs (measured: stage 2 of one subject took
    42 s of CPU with two threads at load average 5, 11 s at load average 2, 7-12 s on one thread).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(BUILD_THREADS)
    try:
        return _build_study(out, demo, n_subjects, seed, evaluate_subjects)
    finally:
        torch.set_num_threads(threads)


def _build_study(out, demo, n_subjects: int, seed: int | None, evaluate_subjects: bool) -> Path:
    from brainview.analysis.demo_study import bundle_fingerprint
    from brainview.analysis.study import write_study
    from brainview.bundle import open_bundle
    from brainview.decoding.blip2 import Blip2Adapter

    if n_subjects < 1:
        raise ValueError("a study needs at least one subject")
    out, demo = Path(out).absolute(), Path(demo).absolute()
    progress = _Progress()
    cpu_start = sum(os.times()[:4])  # this process and its children, user + system
    reference = open_bundle(demo)
    provenance = reference.manifest.get("provenance", {})
    built_seed, size = provenance.get("seed", 0), provenance.get("size", "full")
    seed = built_seed if seed is None else seed
    splits = split_scenes(built_seed, size)
    if not np.array_equal(splits["test"].images, reference.stimuli):
        raise ValueError(f"{demo} was not built from the scenes of seed {built_seed} ({size}): its test images differ")
    progress("scenes", f"the scenes of {demo.name} (seed {built_seed}, {size}): "
                       + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))

    folders = {name: demo / reference.vlm[name] for name in ("captioner", "retrieval")}
    adapter = Blip2Adapter.load(folders["captioner"], folders["retrieval"], device="cpu")
    tokens = {k: adapter.image_query_tokens(splits[k].images) for k in ("train", "val")}
    texts = {k: _caption_embeddings(adapter, splits[k]) for k in ("train", "val")}
    tokens["test"] = np.asarray(reference.image_embeddings)
    texts["test"] = np.asarray(reference.text_embeddings).reshape(len(reference.captions), -1,
                                                                  reference.text_dim)
    maps = {k: image_feature_maps(v.images) for k, v in splits.items()}  # the same for every subject
    progress("targets", f"train and validation targets from {demo.name}'s models; its test embeddings as they are")

    subjects = {"subj01": demo}
    rows = {"subj01": {"seed": subject_seed(seed, 1), "traits": SubjectTraits().describe(), "built": False}}
    for number in range(2, n_subjects + 1):
        sid = f"subj{number:02d}"
        traits = SubjectTraits.draw(subject_seed(seed, number))
        subject = VirtualSubject.create(subject_seed(seed, number), traits)
        progress(f"{sid} anatomy", f"{subject.n_voxels} voxels, ROIs "
                                   + ", ".join(f"{k} {len(v['voxels'])}" for k, v in subject.rois.items()))
        path = out / sid
        write_subject_bundle(
            path, subject, splits, tokens, texts, lambda step, message, sid=sid: progress(f"{sid} {step}", message),
            seed=subject_seed(seed, number), size=size,
            name=f"Demo world: virtual {sid} on fsaverage5 (study seed {seed})", subject_id=sid,
            vlm_folders=folders, trials=[dict(t) for t in reference.trials], feature_maps=maps,
            provenance={"builder": "python -m training.demo_world study", "study_seed": seed,
                        "derived_from": str(demo), "traits": traits.describe()})
        shared = share_parts(path, demo)
        if evaluate_subjects:
            metrics = evaluate(path, stages=("stage2",), captioner=False)
            progress(f"{sid} evaluate", json.dumps(_headline(metrics)))
            _update_manifest(path, metrics=metrics, timings={"total": progress.total}, bundle_bytes=_folder_bytes(path))
        progress(f"{sid} shared", f"{shared} files linked to subj01's")
        subjects[sid] = path
        rows[sid] = {"seed": subject_seed(seed, number), "traits": traits.describe(), "built": True}
    file = write_study(out, subjects, name=f"Demo world: {n_subjects} virtual subjects (seed {seed})", match="id",
                       built_from={"bundle": str(demo), "fingerprint": bundle_fingerprint(demo)},
                       subjects_truth=rows, build_seconds=progress.total,
                       build_cpu_seconds=round(sum(os.times()[:4]) - cpu_start, 1))
    progress("study", f"{file} in {progress.total:.0f} s")
    return file


def share_parts(bundle: Path, reference: Path) -> int:
    """Replace the bundle's files that equal the reference bundle's by hard links to them (no copy
    on disk); where the file systems differ, the copies stay. Returns the number of links made."""
    linked = 0
    candidates = list(SHARED_FILES) + [p.relative_to(bundle).as_posix() for p in (bundle / "vlm").rglob("*")
                                       if p.is_file()]
    for rel in candidates:
        mine, theirs = bundle / rel, reference / rel
        if not (mine.is_file() and theirs.is_file()) or not _same_content(mine, theirs):
            continue
        staging = mine.with_name(f".{mine.name}.link")
        try:
            os.link(theirs, staging)
        except OSError:
            continue
        staging.replace(mine)
        linked += 1
    return linked


def _same_content(a: Path, b: Path) -> bool:
    if a.suffix == ".npz":  # zip members carry their write time: compare the arrays
        with np.load(a, allow_pickle=False) as x, np.load(b, allow_pickle=False) as y:
            return sorted(x.files) == sorted(y.files) and all(np.array_equal(x[k], y[k]) for k in x.files)
    return filecmp.cmp(a, b, shallow=False)


def main(args) -> int:
    from brainview.analysis.demo_study import demo_study_folder

    file = build_study(args.out or demo_study_folder(), args.demo, n_subjects=args.subjects, seed=args.seed,
                       evaluate_subjects=not args.no_eval)
    print(file)
    return 0


def category_preferences(subject: VirtualSubject, scenes) -> dict[str, tuple[str, float]]:
    """Ground truth of each ROI: the scene category its mean noise-free response prefers, and by how much
    (the ROI's response z-scored across ``scenes``, averaged over the scenes of each category; README)."""
    from training.demo_world.scenes import CATEGORIES

    signal = subject.signal(scenes)
    categories = np.array([a["category"] for a in scenes.attributes])
    out = {}
    for name, roi in subject.rois.items():
        response = signal[:, roi["voxels"]].mean(1)
        z = (response - response.mean()) / (response.std() + 1e-9)
        means = {c: float(z[categories == c].mean()) for c in CATEGORIES if (categories == c).any()}
        top = max(means, key=means.get)
        out[name] = (top, round(means[top], 2))
    return out


def ground_truth(seed: int = 0, n_subjects: int = 4, n_scenes: int = 1500) -> dict[str, dict]:
    """Per subject of the demo study: its traits, voxel and ROI sizes, median ncsnr and each ROI's
    preferred category (:func:`category_preferences` on ``n_scenes`` scenes of their own stream)."""
    from training.demo_world.scenes import generate_scenes

    scenes = generate_scenes(n_scenes, seed=seed + 5151)
    out = {}
    for number in range(1, n_subjects + 1):
        traits = SubjectTraits() if number == 1 else SubjectTraits.draw(subject_seed(seed, number))
        subject = VirtualSubject.create(subject_seed(seed, number), traits)
        out[f"subj{number:02d}"] = {
            "traits": traits.describe(), "n_voxels": subject.n_voxels,
            "roi_voxels": {k: len(v["voxels"]) for k, v in subject.rois.items()},
            "median_ncsnr": round(float(np.median(subject.tuning["ncsnr"])), 2),
            "prefers": category_preferences(subject, scenes)}
    return out
