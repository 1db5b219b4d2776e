"""Every NSD step end to end on the tiny NSD tree with tiny random BLIP-2 models, on the CPU.

The ``pipeline`` fixture runs prepare → extract → fit → contrast → evaluate → roi → export once.
While fit and contrast run, every test array (patterns, image tokens, caption embeddings) is
replaced by NaN: had either step read a test row, its weights would not be finite.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainview.bundle import open_bundle
from brainview.decoding.blip2 import Blip2Adapter
from training.nsd import __main__ as nsd_cli
from training.nsd.contrast import contrast
from training.nsd.data import split_rows
from training.nsd.evaluate import evaluate
from training.nsd.export import export
from training.nsd.extract import extract
from training.nsd.fit import fit
from training.nsd.layout import TABLE3_ROIS, WorkDir, read_json
from training.nsd.prepare import prepare
from training.nsd.roi import roi_table

REPO = Path(__file__).resolve().parents[2]
CHEAP_METRICS = ["rouge1", "rougeL", "bleu1", "cider"]  # METEOR loads WordNet (slow); tested in tests/decoding
EXTRACT = dict(device="cpu", batch_size=4, chunk_batches=2)


@dataclass
class Pipeline:
    work: WorkDir
    bundle_path: Path
    vlm: dict


def _poison_test_split(work: WorkDir) -> dict[str, np.ndarray]:
    """Overwrite every test array with NaN; return the originals."""
    rows = split_rows(work)["test"]
    saved = {name: np.load(work / name) for name in ("test_fmri.npy", "image_tokens.npy", "text_embeddings.npy")}
    index = np.asarray(read_json(work / "text_index.json"))
    test_texts = (index[:, 0] >= rows.start) & (index[:, 0] < rows.stop)
    poisoned = {name: array.copy() for name, array in saved.items()}
    poisoned["test_fmri.npy"][:] = np.nan
    poisoned["image_tokens.npy"][rows] = np.nan
    poisoned["text_embeddings.npy"][test_texts] = np.nan
    for name, array in poisoned.items():
        np.save(work / name, array)
    return saved


@pytest.fixture(scope="module")
def pipeline(tiny_nsd, tiny_vlm, tmp_path_factory) -> Pipeline:
    root = tmp_path_factory.mktemp("pipeline")
    work = prepare(tiny_nsd.root, 1, root / "work")
    assert extract(work.path, captioner=str(tiny_vlm["captioner"]), retrieval=str(tiny_vlm["retrieval"]), **EXTRACT)
    saved = _poison_test_split(work)
    fit(work.path, device="cpu")
    contrast(work.path, device="cpu", epochs=2, batch_size=8)
    for name, array in saved.items():
        np.save(work / name, array)
    evaluate(work.path, device="cpu", repeats=5, metrics=CHEAP_METRICS)
    roi_table(work.path, device="cpu")
    export(work.path, root / "bundle", copy_vlm=True)
    return Pipeline(work, root / "bundle", tiny_vlm)


def test_fit_and_contrast_never_read_the_test_split(pipeline):
    from safetensors.numpy import load_file

    for stage in ("stage1", "stage2"):
        for name, tensor in load_file(str(pipeline.work / f"{stage}.safetensors")).items():
            assert np.isfinite(tensor).all(), f"{name} is not finite: a test row reached {stage}"
    fit_log = pipeline.work.read_log("fit")
    n_images = pipeline.work.read_log("prepare")["n_images"]
    assert (fit_log["n_train"], fit_log["n_val"]) == (n_images["train"], n_images["val"])
    assert len(fit_log["validation_mse_per_alpha"]) == 7 and sum(fit_log["chosen_alphas"].values()) == 4 * 16
    history = pipeline.work.read_log("contrast")["history"]
    assert history[0]["epoch"] == -1 and all(np.isfinite(h["val_loss"]) for h in history)


def test_stage1_file_written_per_block_holds_the_ridge_fit(pipeline):
    """fit streams the weights into the safetensors file; they equal an in-memory fit of the same splits."""
    from safetensors.numpy import load_file

    from brainview.decoding.ridge import StageOneRidge
    from training.nsd.data import split_data

    train, val = split_data(pipeline.work, "train"), split_data(pipeline.work, "val")
    ridge = StageOneRidge(device="cpu").fit(train.fmri, train.tokens, val.fmri, val.tokens)
    saved = load_file(str(pipeline.work / "stage1.safetensors"))
    assert saved["stage1.weight"].dtype == np.float32
    assert np.allclose(saved["stage1.weight"], ridge.weight_, rtol=0, atol=1e-6 * np.abs(ridge.weight_).max())
    assert np.allclose(saved["stage1.bias"], ridge.bias_, rtol=0, atol=1e-6 * np.abs(ridge.bias_).max())


def test_extract_targets_are_the_adapters_outputs(pipeline, tiny_nsd):
    import h5py

    adapter = Blip2Adapter.load(pipeline.vlm["captioner"], pipeline.vlm["retrieval"], device="cpu")
    stimuli = read_json(pipeline.work / "stimuli.json")
    record = stimuli["val"][0]
    row = split_rows(pipeline.work)["val"].start
    with h5py.File(tiny_nsd.layout.stimuli, "r") as f:
        image = f["imgBrick"][record["nsd_id"]]
    tokens = np.load(pipeline.work / "image_tokens.npy")
    np.testing.assert_allclose(tokens[row], adapter.image_query_tokens(image[None])[0], rtol=1e-4, atol=1e-5)
    index = read_json(pipeline.work / "text_index.json")
    k = index.index([row, 1])
    np.testing.assert_allclose(np.load(pipeline.work / "text_embeddings.npy")[k],
                               adapter.text_embeddings([record["captions"][1]])[0], rtol=1e-4, atol=1e-5)
    log = pipeline.work.read_log("extract")
    assert (log["n_query"], log["query_dim"], log["text_dim"]) == (4, 16, 8)
    assert log["n_texts"] == sum(len(r["captions"]) for s in stimuli.values() for r in s)


class _Counter:
    """Wraps an adapter method, counts its calls, and can fail after a number of them."""

    def __init__(self, method, fail_after: int | None = None):
        self.method, self.calls, self.fail_after = method, 0, fail_after

    def __call__(self, adapter, *args, **kwargs):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.calls += 1
        return self.method(adapter, *args, **kwargs)


def test_extract_loads_only_the_parts_the_targets_use(pipeline, tiny_nsd):
    """targets_only: no language model in the captioner, no vision tower in the retrieval model, same outputs."""
    from brainview.decoding.blip2 import Blip2Adapter
    from training.nsd.extract import StimulusReader

    full = Blip2Adapter.load(pipeline.vlm["captioner"], pipeline.vlm["retrieval"], device="cpu")
    parts = Blip2Adapter.load(pipeline.vlm["captioner"], pipeline.vlm["retrieval"], device="cpu", targets_only=True)
    assert not hasattr(parts.captioner, "language_model") and hasattr(full.captioner, "language_model")
    assert not hasattr(parts.retrieval, "vision_model") and hasattr(full.retrieval, "vision_model")
    n_full = sum(p.numel() for m in (full.captioner, full.retrieval) for p in m.parameters())
    n_parts = sum(p.numel() for m in (parts.captioner, parts.retrieval) for p in m.parameters())
    assert n_parts < n_full
    reader = StimulusReader(tiny_nsd.layout.stimuli)
    try:
        images = reader([0, 3, 5])
    finally:
        reader.close()
    texts = ["a red bus parked on a city street", "a cat"]
    np.testing.assert_allclose(parts.image_query_tokens(images), full.image_query_tokens(images), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(parts.text_embeddings(texts), full.text_embeddings(texts), rtol=1e-5, atol=1e-6)


def test_interrupted_extract_resumes_without_recomputing(pipeline, tmp_path, monkeypatch):
    work = WorkDir(tmp_path / "work")
    shutil.copytree(pipeline.work.path, work.path, ignore=shutil.ignore_patterns(
        "extract", "image_tokens.npy", "text_embeddings.npy", "text_index.json", "extract.json"))
    refs = dict(captioner=str(pipeline.vlm["captioner"]), retrieval=str(pipeline.vlm["retrieval"]))
    images = _Counter(Blip2Adapter.image_query_tokens)
    texts = _Counter(Blip2Adapter.text_embeddings, fail_after=3)
    monkeypatch.setattr(Blip2Adapter, "image_query_tokens", lambda self, *a, **k: images(self, *a, **k))
    monkeypatch.setattr(Blip2Adapter, "text_embeddings", lambda self, *a, **k: texts(self, *a, **k))
    n_image_chunks = len(range(0, 29, 8))  # 29 images in chunks of batch 4 × 2 batches
    n_text_chunks = len(list((pipeline.work / "extract").glob("text_*.npy")))

    with pytest.raises(RuntimeError, match="simulated crash"):  # a crash after 3 text chunks
        extract(work.path, **refs, **EXTRACT)
    assert (images.calls, texts.calls) == (n_image_chunks, 3)
    assert len(list((work / "extract").glob("*.npy"))) == n_image_chunks + 3
    assert not (work / "image_tokens.npy").exists() and not work.log_path("extract").exists()

    texts.fail_after = None
    assert not extract(work.path, **refs, **EXTRACT, max_chunks=2)  # an interruption by request
    assert (images.calls, texts.calls) == (n_image_chunks, 5)

    assert extract(work.path, **refs, **EXTRACT)  # the rest, and nothing twice
    assert (images.calls, texts.calls) == (n_image_chunks, n_text_chunks)
    for name in ("image_tokens.npy", "text_embeddings.npy"):
        np.testing.assert_allclose(np.load(work / name), np.load(pipeline.work / name), rtol=1e-5, atol=1e-6)
    assert read_json(work / "text_index.json") == read_json(pipeline.work / "text_index.json")
    assert extract(work.path, **refs, **EXTRACT) and texts.calls == n_text_chunks  # complete: nothing to do


def test_evaluate_writes_tables_1_and_2(pipeline):
    result = read_json(pipeline.work / "evaluation.json")
    assert result["n_test_images"] == 6 and result["normalization"] == "session"
    assert set(result["stages"]["stage1"]["retrieval"]) == {"image_given_brain", "brain_given_image"}
    assert set(result["stages"]["stage2"]["retrieval"]) == {
        "image_given_brain", "brain_given_image", "text_given_brain", "brain_given_text"}
    for stage in ("stage1", "stage2"):
        entry = result["stages"][stage]
        assert entry["retrieval"]["image_given_brain"]["pool"] == 6
        assert set(entry["captioning"]) == set(CHEAP_METRICS)
        assert all(v is not None or m in entry["missing"] for m, v in entry["captioning"].items())
        decoded = read_json(pipeline.work / f"captions_{stage}.json")
        assert len(decoded) == 6 and all(isinstance(d["caption"], str) and d["references"] for d in decoded)
    table = (pipeline.work / "evaluation.md").read_text()
    assert "Table 1" in table and "Table 2" in table and "| paper stage2 | 0.722 | 0.549 | 0.496 | 0.450 |" in table


def test_roi_table_captions_every_table3_roi(pipeline):
    table = read_json(pipeline.work / "roi_table.json")
    rois = read_json(pipeline.work / "rois.json")
    assert table["stage"] == "stage1" and table["scale"] == 11.0
    assert list(table["rois"]) + table["missing"] == list(TABLE3_ROIS)
    for name, entry in table["rois"].items():
        assert isinstance(entry["caption"], str) and entry["n_voxels"] == len(rois[name]["voxels"])
    assert "a black and white sign" in (pipeline.work / "roi_table.md").read_text()  # the paper's subj01 V1


def test_exported_bundle(pipeline, tiny_nsd):
    bundle = open_bundle(pipeline.bundle_path)
    stimuli = read_json(pipeline.work / "stimuli.json")["test"]
    assert bundle.n_trials == 6 and bundle.n_voxels == int(tiny_nsd.mask.sum())
    assert bundle.stages == ["stage1", "stage2"] and bundle.manifest["subject"] == "subj01"
    assert [t["nsd_id"] for t in bundle.trials] == [r["nsd_id"] for r in stimuli]
    assert bundle.captions == [r["captions"] for r in stimuli]
    np.testing.assert_array_equal(bundle.fmri, np.load(pipeline.work / "test_fmri.npy"))
    # every trial of each test image, in the order shown: their mean is the stored pattern
    assert bundle.repeat_counts.tolist() == [r["repeats"] for r in stimuli] and bundle.fmri_repeats.dtype == np.float16
    for t, count in enumerate(bundle.repeat_counts):
        np.testing.assert_allclose(np.asarray(bundle.fmri_repeats[t, :count], np.float32).mean(0), bundle.fmri[t],
                                   atol=2e-2 * float(np.abs(bundle.fmri[t]).max()))
    assert bundle.stimuli.shape == (6, 40, 40, 3)  # already smaller than 224 px: kept as is
    provenance = bundle.manifest["provenance"]
    assert provenance["normalization"]["mode"] == "session"
    assert provenance["splits"]["images"]["test"] == 6
    assert bundle.vlm["captioner"] == "vlm/captioner" and (bundle.path / "vlm/captioner/config.json").is_file()
    assert provenance["extract"]["captioner"] == str(Path(pipeline.vlm["captioner"]).resolve())
    assert bundle.manifest["metrics"]["test"]["stage2"]["retrieval"]["text_given_brain"]["pool"] == 6
    assert {"V1", "hV4", "floc-faces"} <= set(bundle.rois) and bundle.rois["V1"]["group"] == "prf-visualrois"
    # surfaces: the subject's native meshes as written in the FreeSurfer files
    from nibabel.freesurfer import read_geometry

    coords, faces = read_geometry(str(tiny_nsd.layout.surface("rh", "pial")))
    np.testing.assert_allclose(bundle.mesh["rh"]["pial"], coords, rtol=1e-6)
    np.testing.assert_array_equal(bundle.mesh["rh"]["faces"], faces)


def test_export_stores_float16_weights_within_the_stated_tolerance(pipeline):
    """auto: float16 when the measured change of the test predictions is within the tolerance, else float32."""
    from safetensors.numpy import load_file

    from training.nsd.export import HALF_TOLERANCE, half_precision_error

    report = open_bundle(pipeline.bundle_path).manifest["provenance"]["weights"]
    assert report["requested"] == "auto" and set(report["float16_prediction_error"]) == {
        "stage1", "stage2", "stage2.projection"}
    stored = load_file(str(pipeline.bundle_path / "brain_model.safetensors"))
    fitted = load_file(str(pipeline.work / "stage1.safetensors"))
    test_fmri = np.load(pipeline.work / "test_fmri.npy")
    error = half_precision_error(test_fmri, fitted["stage1.weight"], fitted["stage1.bias"])
    assert report["float16_prediction_error"]["stage1"] == pytest.approx(error)
    expected = np.float16 if max(report["float16_prediction_error"].values()) <= HALF_TOLERANCE else np.float32
    assert report["stored"] == np.dtype(expected).name
    assert all(v.dtype == expected for v in stored.values())
    np.testing.assert_array_equal(stored["stage1.weight"], fitted["stage1.weight"].astype(expected))
    # the measure itself: zero for weights that float16 holds exactly, large for ones it cannot
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    assert half_precision_error(x, np.array([[0.5, -2.0, 0.25]], np.float32), np.zeros(1, np.float32)) == 0
    assert half_precision_error(x, np.array([[1 + 2 ** -12, 1e-8, 0.0]], np.float32), np.zeros(1, np.float32)) > 1e-4


def test_vertex_voxel_map_follows_the_layer_transforms(pipeline, tiny_nsd):
    bundle = open_bundle(pipeline.bundle_path)
    matrix = bundle.vertex_voxel.tocsr()
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    assert np.allclose(sums[sums > 0], 1.0, atol=1e-5)
    assert (np.asarray(matrix.sum(axis=0)).ravel() > 0).all()  # every nsdgeneral voxel is reachable
    report = bundle.manifest["provenance"]["vertex_voxel"]
    assert report["unreached_voxels_attached"] > 0  # the tiny cortex is a shell: inner voxels get attached
    assert sums[0] == sums[1] == 0  # vertices 0 and 1 have no valid position (9999) on any layer
    # an independent reading of one vertex that no attached voxel touches: its depth samples in nsdgeneral
    voxel_of = -np.ones(tiny_nsd.mask.shape, dtype=int)
    voxel_of[tiny_nsd.mask] = np.arange(int(tiny_nsd.mask.sum()))
    layers = [np.asarray(nib.load(tiny_nsd.layout.layer_transform("lh", k)).get_fdata()).reshape(-1, 3) for k in (1, 2, 3)]
    checked = 0
    for v in range(3, len(layers[0])):
        hits = [voxel_of[tuple(np.rint(c[v]).astype(int) - 1)] for c in layers]
        hits = [h for h in hits if h >= 0]
        row = matrix.getrow(v)
        expected = {h: hits.count(h) / len(hits) for h in hits}
        if hits and len(row.indices) == len(expected):
            assert {int(i): float(w) for i, w in zip(row.indices, row.data)} == pytest.approx(expected)
            checked += 1
    assert checked > 10


def test_brainview_info_and_eval_on_the_bundle(pipeline, capsys):
    info = subprocess.run([sys.executable, "-m", "brainview", "info", str(pipeline.bundle_path), "--json"],
                          cwd=REPO, capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    assert summary["valid"] and summary["n_trials"] == 6 and summary["stages"] == ["stage1", "stage2"]
    from brainview.cli import main as brainview_main

    assert brainview_main(["eval", str(pipeline.bundle_path), "--json", "--stage", "2", "--repeats", "5",
                           "--no-captions", "--device", "cpu"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    # one definition of retrieval: the pipeline's Table 1 is what `brainview eval` finds in the bundle
    ours = read_json(pipeline.work / "evaluation.json")["stages"]["stage2"]["retrieval"]
    assert evaluated["retrieval"] == ours


def test_every_step_skips_finished_work(pipeline, capfd):
    work, vlm = str(pipeline.work.path), pipeline.vlm
    mtimes = {p: p.stat().st_mtime_ns for p in pipeline.work.path.glob("*.*")}
    steps = [["extract", work, "--captioner", str(vlm["captioner"]), "--retrieval", str(vlm["retrieval"]),
              "--device", "cpu", "--batch-size", "4", "--chunk-batches", "2"],
             ["fit", work, "--device", "cpu"], ["contrast", work, "--device", "cpu", "--epochs", "2", "--batch-size", "8"],
             ["evaluate", work, "--device", "cpu", "--repeats", "5", "--metrics", *CHEAP_METRICS],
             ["roi", work, "--device", "cpu"], ["export", work, "--out", str(pipeline.bundle_path)]]
    for argv in steps:
        assert nsd_cli.main(argv) == 0, argv
        assert "nothing to do" in capfd.readouterr().err, argv
    assert {p: p.stat().st_mtime_ns for p in pipeline.work.path.glob("*.*")} == mtimes
    assert nsd_cli.main(["fit", str(pipeline.work.path / "missing")]) == 2
    assert "run `python -m training.nsd prepare` first" in capfd.readouterr().err


def test_export_writes_the_fsaverage_map(pipeline, tiny_nsd):
    """NSD's white-to-fsaverage (1-based, 9999 none) stored 0-based with -1 in cortex/fsaverage.npz."""
    from brainview.bundle import open_bundle
    from brainview.cortex.transfer import space_of
    from tests.nsd.conftest import FSAVERAGE_VERTICES

    bundle = open_bundle(pipeline.bundle_path)
    space = space_of(bundle)
    assert space.kind == "fsaverage"
    n = len(bundle.mesh["lh"]["pial"])
    expected = (np.arange(FSAVERAGE_VERTICES) * 7) % n
    expected[-1] = -1
    assert space.to_native["lh"].tolist() == expected.tolist() == space.to_native["rh"].tolist()


def test_study_of_exported_subjects(pipeline, tmp_path):
    """``python -m training.nsd study`` lists bundles as subjects matched by nsd_id; a painted region
    goes from one subject to the other through fsaverage."""
    import json
    import shutil

    from brainview.analysis.study import load_study
    from brainview.bundle import open_bundle
    from brainview.cortex.surface import Cortex
    from brainview.cortex.transfer import space_of, transfer_vertices
    from tests.factories import make_distinct

    other = tmp_path / "subj02"
    shutil.copytree(pipeline.bundle_path, other)
    make_distinct(other)  # another subject's bundle, not the same one twice (which a study refuses)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["subject"] = "subj02"
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert nsd_cli.main(["study", str(pipeline.bundle_path), str(other), "--out", str(tmp_path)]) == 0
    study = load_study(tmp_path / "study.json")
    assert study.ids == ["subj01", "subj02"] and study.match == "nsd_id"
    assert len(study.stimuli.shared()) == open_bundle(other).n_trials
    a, b = study.bundle("subj01"), study.bundle("subj02")
    space = space_of(a)
    chosen = space.to_native["lh"][:5]  # native vertices that fsaverage vertices 0-4 hold
    moved = transfer_vertices(chosen, Cortex.from_bundle(a), space, Cortex.from_bundle(b), space_of(b))
    assert sorted(moved.tolist()) == sorted(set(chosen.tolist()))  # same registration: the same vertices
    assert nsd_cli.main(["study", str(pipeline.bundle_path), str(pipeline.bundle_path), "--out", str(tmp_path)]) == 2
