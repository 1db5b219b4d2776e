"""Small, valid bundles built by the tests themselves (DESIGN.md §3), with known answers.

``make_bundle`` plants an exact structure: stage-1 predictions of each trial equal its image
targets, and the stage-2 projection of each trial's tokens points at its own captions, so every
retrieval direction has top-1 = 1 unless a test perturbs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from brainview.bundle import make_manifest, write_bundle


def icosphere(subdivisions: int = 2, radius: float = 50.0, center=(0.0, 0.0, 0.0)):
    """Vertices (V, 3) float32 and faces (F, 3) int32 of a subdivided icosahedron."""
    t = (1 + 5 ** 0.5) / 2
    verts = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
             (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
             (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11),
             (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    verts = [np.array(v, dtype=np.float64) / np.linalg.norm(v) for v in verts]
    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}

        def midpoint(a: int, b: int) -> int:
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                cache[key] = len(verts) - 1
            return cache[key]

        new_faces = []
        for a, b, c in faces:
            ab, bc, ca = midpoint(a, b), midpoint(b, c), midpoint(c, a)
            new_faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new_faces
    v = np.array(verts) * radius + np.asarray(center)
    return v.astype(np.float32), np.array(faces, dtype=np.int32)


def sphere_mesh(subdivisions: int = 2) -> dict:
    """Two spheres side by side standing in for the hemispheres."""
    mesh = {}
    for hemi, x in (("lh", -60.0), ("rh", 60.0)):
        v, f = icosphere(subdivisions, 50.0, (x, 0.0, 0.0))
        mesh[hemi] = {"inflated": v, "pial": v * 0.9, "faces": f, "sulc": np.sin(v[:, 2] / 8).astype(np.float32)}
    return mesh


def make_bundle(path: Path, *, n_trials: int = 40, n_voxels: int = 60, n_query: int = 4, query_dim: int = 8,
                text_dim: int = 6, captions_per_trial: int = 2, seed: int = 0, subdivisions: int = 2,
                vlm: dict | None = None, vlm_folders: dict | None = None, stages=("stage1", "stage2"),
                flat: bool = False, questions: bool = False, repeats: int = 0):
    """Write a consistent bundle with planted, exactly recoverable structure; return it opened. With
    ``flat``, the meshes get a flatmap: the lower cap of each sphere projected onto its x-y plane;
    with ``questions``, a QA set (``qa_set``); with ``repeats``, that many single trials per image whose
    mean is the stored pattern (``noisy_repeats``; every third trial has one repeat fewer)."""
    rng = np.random.default_rng(seed)
    n_out = n_query * query_dim
    fmri = rng.standard_normal((n_trials, n_voxels)).astype(np.float32)
    w1 = (rng.standard_normal((n_out, n_voxels)) / np.sqrt(n_voxels)).astype(np.float32)
    b1 = (0.1 * rng.standard_normal(n_out)).astype(np.float32)
    targets = (fmri @ w1.T + b1).reshape(n_trials, n_query, query_dim).astype(np.float32)
    w2, b2 = (w1 * 1.01).astype(np.float32), b1.copy()
    proj_w = rng.standard_normal((text_dim, query_dim)).astype(np.float32)
    proj_b = np.zeros(text_dim, dtype=np.float32)
    stage2_tokens = (fmri @ w2.T + b2).reshape(n_trials, n_query, query_dim)
    projected = stage2_tokens @ proj_w.T + proj_b
    projected /= np.linalg.norm(projected, axis=-1, keepdims=True)
    text, index, captions = [], [], []
    for t in range(n_trials):
        captions.append([f"caption {c} of trial {t}" for c in range(captions_per_trial)])
        for c in range(captions_per_trial):
            e = projected[t, c % n_query] + 0.01 * rng.standard_normal(text_dim)
            text.append(e / np.linalg.norm(e))
            index.append([t, c])
    mesh = sphere_mesh(subdivisions)
    if flat:
        from brainview.cortex.flatmap import flatmap

        for part in mesh.values():
            centred = part["pial"] - part["pial"].mean(axis=0)
            keep = np.flatnonzero(centred[:, 2] < -0.1 * centred[:, 2].max())  # below the equator: no folds
            coords = np.column_stack([centred[keep, :2], np.zeros(len(keep))]).astype(np.float32)
            part.update(flatmap(keep, coords, part["faces"], len(part["pial"])))
    n_vert = sum(m["inflated"].shape[0] for m in mesh.values())
    rows = np.arange(n_vert)
    cols = rows % n_voxels
    vertex_voxel = sp.csr_matrix((np.ones(n_vert, dtype=np.float32), (rows, cols)), shape=(n_vert, n_voxels))
    half = n_voxels // 2
    rois = {"V1": {"group": "prf-visualrois", "voxels": list(range(0, max(1, half // 2)))},
            "V2": {"group": "prf-visualrois", "voxels": list(range(half // 2, half))},
            "FFA-1": {"group": "floc-faces", "voxels": list(range(half, n_voxels))}}
    stimuli = rng.integers(0, 256, size=(n_trials, 16, 16, 3), dtype=np.uint8)
    weights = {"stage1.weight": w1, "stage1.bias": b1}
    if "stage2" in stages:
        weights.update({"stage2.weight": w2, "stage2.bias": b2,
                        "stage2.projection.weight": proj_w, "stage2.projection.bias": proj_b})
    manifest = make_manifest(name="test bundle", dataset="synthetic", subject="s0", n_voxels=n_voxels,
                             n_query=n_query, query_dim=query_dim, text_dim=text_dim, stages=stages, vlm=vlm)
    return write_bundle(path, manifest=manifest, weights=weights, fmri=fmri, stimuli=stimuli, captions=captions,
                        trials=[{"id": f"t{t:04d}", "nsd_id": t} for t in range(n_trials)],
                        image_embeddings=targets, text_embeddings=np.array(text, dtype=np.float32),
                        text_index=index, mesh=mesh, vertex_voxel=vertex_voxel, rois=rois,
                        vlm_folders=vlm_folders, questions=qa_set(n_trials) if questions else None,
                        **(noisy_repeats(fmri, repeats, seed) if repeats else {}), overwrite=True)


def noisy_repeats(fmri: np.ndarray, repeats: int, seed: int = 0, noise: float = 1.0) -> dict:
    """``write_bundle``'s ``fmri_repeats`` and ``repeat_counts``: per trial ``count`` repeats (``repeats``,
    one fewer for every third trial) of unit noise around ``fmri`` whose valid slots average to it exactly."""
    rng = np.random.default_rng([seed, 27])
    counts = np.where(np.arange(len(fmri)) % 3 == 2, max(1, repeats - 1), repeats)
    out = np.zeros((len(fmri), repeats, fmri.shape[1]), dtype=np.float32)
    for t, c in enumerate(counts):
        e = noise * rng.standard_normal((c, fmri.shape[1]))
        out[t, :c] = fmri[t] + e - e.mean(axis=0)
    return {"fmri_repeats": out, "repeat_counts": counts}


def qa_set(n_trials: int) -> list[list[dict]]:
    """Two questions per trial, a colour (red or blue) and a place (three of them)."""
    return [[{"type": "colour", "question": "what colour is it?", "answers": ["red" if t % 2 else "blue"]},
             {"type": "place", "question": "where is this?", "answers": [f"place {t % 3}", f"spot {t % 3}"]}]
            for t in range(n_trials)]


def make_captioned_bundle(root: Path, n_trials: int = 12, seed: int = 0, max_new_tokens: int = 6, **shape):
    """``make_bundle`` plus tiny random BLIP-2 models in ``vlm/``, so captions go through the real classes."""
    from brainview.decoding.tiny_vlm import save_tiny_blip2, train_tokenizer

    shape = {"n_query": 4, "query_dim": 8, "text_dim": 6, **shape}
    corpus = [f"caption {c} of trial {t}" for t in range(n_trials) for c in range(2)]
    models = save_tiny_blip2(root / "models", train_tokenizer(corpus, vocab_size=300), seed=seed,
                             n_query=shape["n_query"], query_dim=shape["query_dim"], lm_hidden=32,
                             text_dim=shape["text_dim"])
    vlm = {"captioner": "vlm/captioner", "retrieval": "vlm/retrieval", "max_new_tokens": max_new_tokens}
    return make_bundle(root / "bundle", n_trials=n_trials, seed=seed, vlm=vlm, vlm_folders=models, questions=True,
                       **shape)


CONCEPTS = ("A", "B", "C")


def concept_text(concept: str, text_dim: int = 5) -> np.ndarray:
    """The planted text direction of concept ``concept`` (A, B, C → unit vectors 0, 1, 2)."""
    e = np.zeros(text_dim, dtype=np.float32)
    e[CONCEPTS.index(concept)] = 1.0
    return e


def make_concept_bundle(path: Path, *, per_concept: int = 20, n_voxels: int = 40, seed: int = 0,
                        vlm: dict | None = None, vlm_folders: dict | None = None):
    """A bundle where concept X's trials activate the voxels of ROI ``X-area`` (5 voxels each) and stage 2 reads
    those voxels into query token X along text direction ``concept_text(X)``: every phrase search, zero-shot
    label and concept map has one known answer. Trials carry the truth in ``scene.category``."""
    rng = np.random.default_rng(seed)
    n_query, query_dim, text_dim = 3, 6, 5
    labels = np.repeat(np.arange(len(CONCEPTS)), per_concept)
    n_trials = labels.size
    areas = {c: np.arange(5 * i, 5 * i + 5) for i, c in enumerate(CONCEPTS)}
    clean = np.zeros((n_trials, n_voxels), dtype=np.float32)
    for i, concept in enumerate(CONCEPTS):
        clean[np.ix_(labels == i, areas[concept])] = 2.0
    fmri = (clean + 0.3 * rng.standard_normal((n_trials, n_voxels))).astype(np.float32)
    weight = (0.01 * rng.standard_normal((n_query * query_dim, n_voxels))).astype(np.float32)
    for i, concept in enumerate(CONCEPTS):
        weight[i * query_dim + i, areas[concept]] = 0.5  # token i, channel i ← the concept's voxels
    bias = np.zeros((n_query, query_dim), dtype=np.float32)
    bias[:, 3] = 1.0  # every token starts along text direction 3, which no concept uses
    bias = bias.ravel()
    projection = np.eye(text_dim, query_dim, dtype=np.float32)
    targets = (clean @ weight.T + bias).reshape(n_trials, n_query, query_dim).astype(np.float32)
    captions = [[f"a photo of a {CONCEPTS[c]}"] for c in labels]
    text = np.stack([concept_text(CONCEPTS[c], text_dim) for c in labels])
    mesh = sphere_mesh(2)
    n_vert = sum(m["inflated"].shape[0] for m in mesh.values())
    rows = np.arange(n_vert)
    vertex_voxel = sp.csr_matrix((np.ones(n_vert, dtype=np.float32), (rows, rows % n_voxels)),
                                 shape=(n_vert, n_voxels))
    rois = {f"{c}-area": {"group": "concepts", "voxels": areas[c].tolist()} for c in CONCEPTS}
    rois["rest"] = {"group": "concepts", "voxels": list(range(15, n_voxels))}
    weights = {"stage1.weight": weight, "stage1.bias": bias, "stage2.weight": weight, "stage2.bias": bias,
               "stage2.projection.weight": projection, "stage2.projection.bias": np.zeros(text_dim, np.float32)}
    manifest = make_manifest(name="concept bundle", dataset="synthetic", subject="s0", n_voxels=n_voxels,
                             n_query=n_query, query_dim=query_dim, text_dim=text_dim, stages=("stage1", "stage2"),
                             vlm=vlm)
    trials = [{"id": f"c{t:03d}", "scene": {"category": CONCEPTS[c], "parity": t % 2}} for t, c in enumerate(labels)]
    return write_bundle(path, manifest=manifest, weights=weights, fmri=fmri,
                        stimuli=rng.integers(0, 256, size=(n_trials, 16, 16, 3), dtype=np.uint8),
                        captions=captions, trials=trials, image_embeddings=targets, text_embeddings=text,
                        text_index=[[t, 0] for t in range(n_trials)], mesh=mesh, vertex_voxel=vertex_voxel,
                        rois=rois, vlm_folders=vlm_folders, overwrite=True)


def make_distinct(bundle_path) -> None:
    """A copy of a bundle made another subject's: its fMRI nudged by 1e-4 in one value (a study refuses
    the same bundle under two subject ids)."""
    from brainview.bundle import open_bundle

    fmri = np.array(open_bundle(bundle_path).fmri)
    fmri[0, 0] += 1e-4
    (bundle_path / "test" / "fmri.npy").unlink()
    np.save(bundle_path / "test" / "fmri.npy", fmri)


def drop_last_trial(bundle_path):
    """The same bundle with its last trial removed: a subject who did not see the last stimulus."""
    import json

    from brainview.bundle import open_bundle

    b = open_bundle(bundle_path)
    keep = b.n_trials - 1
    rows = [i for i, (t, _) in enumerate(b.text_index) if t < keep]
    # copies first: the bundle's arrays are memory maps of the files about to be replaced
    arrays = {"test/fmri.npy": np.array(b.fmri[:keep]), "test/stimuli.npy": np.array(b.stimuli[:keep]),
              "embeddings/image.npy": np.array(b.image_embeddings[:keep]),
              "embeddings/text.npy": np.array(b.text_embeddings[rows])}
    texts = {"test/captions.json": b.captions[:keep], "test/trials.json": b.trials[:keep],
             "embeddings/text_index.json": [list(map(int, b.text_index[i])) for i in rows]}
    if b.questions is not None:
        texts["test/questions.json"] = b.questions[:keep]
    del b
    for name, array in arrays.items():
        (bundle_path / name).unlink()
        np.save(bundle_path / name, array)
    for name, value in texts.items():
        (bundle_path / name).write_text(json.dumps(value))
    open_bundle(bundle_path)  # still a valid bundle


def copy_with_manifest(bundle_path, out, change):
    """A copy of a bundle whose manifest ``change(manifest)`` edits in place; returns the copy's path."""
    import json
    import shutil

    shutil.copytree(bundle_path, out)
    file = out / "manifest.json"
    manifest = json.loads(file.read_text())
    change(manifest)
    file.write_text(json.dumps(manifest))
    return out


def renoise_repeats(bundle_path, noise: float, seed: int = 0) -> None:
    """Redraw a bundle's single trials with ``noise`` times unit noise (same counts, same mean, same file
    types): a tiny bundle decodes its noisier repeats less well than their mean, as real data does."""
    test = Path(bundle_path) / "test"
    fmri = np.load(test / "fmri.npy").astype(np.float32)
    stored = np.load(test / "fmri_repeats.npy")
    parts = noisy_repeats(fmri, stored.shape[1], seed, noise)
    assert np.array_equal(parts["repeat_counts"], np.load(test / "fmri_repeat_counts.npy"))
    np.save(test / "fmri_repeats.npy", parts["fmri_repeats"].astype(stored.dtype))


def json_paths(value, max_items: int | None = None, prefix=()):
    """Every (path, value) of a JSON document, containers included (at most ``max_items`` items of a
    list): the places a fuzz test mutates."""
    yield prefix, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from json_paths(item, max_items, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value[:max_items]):
            yield from json_paths(item, max_items, prefix + (i,))
