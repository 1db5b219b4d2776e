"""The bundle format: round trip through the writer, and every kind of damage refused with its own message."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
import scipy.sparse as sp

from brainview.bundle import BundleError, open_bundle
from tests.factories import make_bundle


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundles") / "pristine")


@pytest.fixture
def bundle_dir(pristine, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(pristine.path, target)
    return target


def test_round_trip_keeps_every_part(pristine):
    bundle = open_bundle(pristine.path)
    assert bundle.n_trials == 40 and bundle.n_voxels == 60
    assert bundle.fmri.shape == (40, 60) and isinstance(bundle.fmri, np.memmap)
    assert isinstance(bundle.stimuli, np.memmap) and bundle.stimuli.dtype == np.uint8
    assert bundle.image_embeddings.shape == (40, 4, 8)
    assert bundle.captions[3] == ["caption 0 of trial 3", "caption 1 of trial 3"]
    assert bundle.trials[0]["id"] == "t0000"
    assert bundle.text_index.shape == (80, 2)
    assert set(bundle.weights) == {"stage1.weight", "stage1.bias", "stage2.weight", "stage2.bias",
                                   "stage2.projection.weight", "stage2.projection.bias"}
    assert bundle.vertex_voxel.shape == (sum(bundle.n_vertices.values()), 60)
    assert list(bundle.rois) == ["V1", "V2", "FFA-1"]
    assert bundle.rois["FFA-1"]["group"] == "floc-faces"
    assert bundle.manifest["vlm"]["max_new_tokens"] == 30  # defaults filled in by make_manifest


def test_bundle_written_by_hand_from_the_spec_opens(tmp_path):
    """A bundle made from DESIGN.md §3 alone, without brainview's writer."""
    root = tmp_path / "handmade"
    for sub in ("test", "embeddings", "cortex"):
        (root / sub).mkdir(parents=True)
    n, v, q, d, t = 5, 7, 2, 3, 4
    (root / "manifest.json").write_text(json.dumps({
        "format": "brainview-bundle", "version": 1, "name": "hand", "dataset": "x", "subject": "s",
        "n_voxels": v, "n_query": q, "query_dim": d, "text_dim": t, "stages": ["stage1"],
        "vlm": {}, "synthetic": {"scale": 11.0}, "provenance": {}, "metrics": {}}))
    from safetensors.numpy import save_file
    save_file({"stage1.weight": np.ones((q * d, v), np.float32), "stage1.bias": np.zeros(q * d, np.float32)},
              str(root / "brain_model.safetensors"))
    np.save(root / "test/fmri.npy", np.zeros((n, v), np.float16))
    np.save(root / "test/stimuli.npy", np.zeros((n, 8, 8, 3), np.uint8))
    (root / "test/captions.json").write_text(json.dumps([["a"]] * n))
    (root / "test/trials.json").write_text(json.dumps([{"id": str(i)} for i in range(n)]))
    np.save(root / "embeddings/image.npy", np.zeros((n, q, d), np.float32))
    np.save(root / "embeddings/text.npy", np.tile(np.eye(t, dtype=np.float32)[:1], (n, 1)))
    (root / "embeddings/text_index.json").write_text(json.dumps([[i, 0] for i in range(n)]))
    faces = np.array([[0, 1, 2]], np.int32)
    verts = np.eye(3, dtype=np.float32)
    np.savez(root / "cortex/mesh.npz", **{f"{h}_{k}": a for h in ("lh", "rh") for k, a in
                                          (("inflated", verts), ("pial", verts), ("faces", faces),
                                           ("sulc", np.zeros(3, np.float32)))})
    sp.save_npz(root / "cortex/vertex_voxel.npz", sp.csr_matrix(np.eye(6, v, dtype=np.float32)))
    (root / "cortex/rois.json").write_text(json.dumps({"V1": {"group": "prf-visualrois", "voxels": [0, 1]}}))
    bundle = open_bundle(root)
    assert bundle.stages == ["stage1"] and bundle.fmri.dtype == np.float16


def _edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _save_npz_with(path, **replace):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(replace)
    np.savez(path, **arrays)


def _resave_weights(root, change):
    from safetensors.numpy import load_file, save_file
    weights = load_file(str(root / "brain_model.safetensors"))
    change(weights)
    save_file(weights, str(root / "brain_model.safetensors"))


def _set_fmri_nan(root):
    data = np.load(root / "test/fmri.npy")
    data[7, 3] = np.nan
    np.save(root / "test/fmri.npy", data)


def _pickled_captions_npy(root):
    arr = np.empty(40, dtype=object)
    arr[:] = [{"x": 1}] * 40
    np.save(root / "embeddings/image.npy", arr, allow_pickle=True)


DAMAGE = {
    "missing file": (lambda r: (r / "test/stimuli.npy").unlink(), "test/stimuli.npy", "missing"),
    "manifest not json": (lambda r: (r / "manifest.json").write_text("{oops"), "manifest.json", "not valid JSON"),
    "unknown format": (lambda r: _edit_json(r / "manifest.json", lambda m: m.update(format="other")),
                       "manifest.json", "unknown format"),
    "unknown version": (lambda r: _edit_json(r / "manifest.json", lambda m: m.update(version=7)),
                        "manifest.json", "unknown format version 7"),
    "manifest key missing": (lambda r: _edit_json(r / "manifest.json", lambda m: m.pop("query_dim")),
                             "manifest.json", '"query_dim"'),
    "unknown stage": (lambda r: _edit_json(r / "manifest.json", lambda m: m.update(stages=["stage3"])),
                      "manifest.json", '"stages"'),
    "voxel count disagrees": (lambda r: _edit_json(r / "manifest.json", lambda m: m.update(n_voxels=61)),
                              "test/fmri.npy", "n_voxels=61"),
    "fmri wrong dtype": (lambda r: np.save(r / "test/fmri.npy", np.zeros((40, 60), np.int16)),
                         "test/fmri.npy", "dtype int16"),
    "fmri with NaN": (_set_fmri_nan, "test/fmri.npy", "NaN"),
    "stimuli count disagrees": (lambda r: np.save(r / "test/stimuli.npy", np.zeros((39, 16, 16, 3), np.uint8)),
                                "test/stimuli.npy", "(39, 16, 16, 3)"),
    "stimuli not RGB": (lambda r: np.save(r / "test/stimuli.npy", np.zeros((40, 16, 16, 4), np.uint8)),
                        "test/stimuli.npy", "RGB"),
    "captions count disagrees": (lambda r: _edit_json(r / "test/captions.json", lambda c: c.pop()),
                                 "test/captions.json", "39 trials"),
    "captions not strings": (lambda r: _edit_json(r / "test/captions.json", lambda c: c.__setitem__(0, [3])),
                             "test/captions.json", "caption strings"),
    "duplicate trial ids": (lambda r: _edit_json(r / "test/trials.json", lambda t: t[1].update(id="t0000")),
                            "test/trials.json", "not unique"),
    "image embeddings shape": (lambda r: np.save(r / "embeddings/image.npy", np.zeros((40, 4, 9), np.float32)),
                               "embeddings/image.npy", "(40, 4, 9)"),
    "pickled object array": (_pickled_captions_npy, "embeddings/image.npy", "pickle"),
    "text not normalized": (lambda r: np.save(r / "embeddings/text.npy", np.ones((80, 6), np.float32)),
                            "embeddings/text.npy", "L2-normalized"),
    "text index out of range": (lambda r: _edit_json(r / "embeddings/text_index.json",
                                                     lambda t: t.__setitem__(5, [40, 0])),
                                "embeddings/text_index.json", "entry 5 = [40, 0]"),
    "text index length": (lambda r: _edit_json(r / "embeddings/text_index.json", lambda t: t.pop()),
                          "embeddings/text_index.json", "79 entries"),
    "weight tensor missing": (lambda r: _resave_weights(r, lambda w: w.pop("stage2.projection.bias")),
                              "brain_model.safetensors", "stage2.projection.bias"),
    "weight shape": (lambda r: _resave_weights(r, lambda w: w.update({"stage1.bias": np.zeros(3, np.float32)})),
                     "brain_model.safetensors", "stage1.bias"),
    "weight not finite": (lambda r: _resave_weights(r, lambda w: w["stage1.weight"].__setitem__((0, 0), np.inf)),
                          "brain_model.safetensors", "NaN or infinite"),
    "weights not safetensors": (lambda r: (r / "brain_model.safetensors").write_bytes(pickle.dumps({"a": 1})),
                                "brain_model.safetensors", "safetensors"),
    "faces out of range": (lambda r: _save_npz_with(r / "cortex/mesh.npz", lh_faces=np.array([[0, 1, 99999]])),
                           "cortex/mesh.npz", "lh_faces"),
    "mesh key missing": (lambda r: _save_npz_with(r / "cortex/mesh.npz", rh_sulc=np.zeros(5, np.float32)),
                         "cortex/mesh.npz", "rh_sulc"),
    "sparse map shape": (lambda r: sp.save_npz(r / "cortex/vertex_voxel.npz", sp.csr_matrix((10, 60), dtype=np.float32)),
                         "cortex/vertex_voxel.npz", "has shape (10, 60)"),
    "sparse map rows": (lambda r: _save_npz_with(r / "cortex/vertex_voxel.npz",
                                                 data=np.full(np.load(r / "cortex/vertex_voxel.npz")["data"].shape, 0.5,
                                                              np.float32)),
                        "cortex/vertex_voxel.npz", "sum to 1 or 0"),
    "roi voxel out of range": (lambda r: _edit_json(r / "cortex/rois.json", lambda x: x["V1"].update(voxels=[0, 60])),
                               "cortex/rois.json", 'ROI "V1" refers to voxels outside'),
    "roi malformed": (lambda r: _edit_json(r / "cortex/rois.json", lambda x: x.update(V9=[1, 2])),
                      "cortex/rois.json", 'ROI "V9"'),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_bundle_is_refused_with_its_own_message(bundle_dir, kind):
    damage, file, fragment = DAMAGE[kind]
    damage(bundle_dir)
    with pytest.raises(BundleError) as info:
        open_bundle(bundle_dir)
    assert info.value.file == file, str(info.value)
    assert fragment in str(info.value)
    assert str(info.value).startswith(file)


def test_damage_messages_are_distinct():
    assert len({(f, frag) for _, f, frag in DAMAGE.values()}) == len(DAMAGE) >= 12


def test_path_problems(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        open_bundle(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(BundleError, match="is not a bundle"):
        open_bundle(tmp_path / "file.txt")


def test_writer_refuses_to_publish_an_invalid_bundle(tmp_path, pristine):
    from brainview.bundle import write_bundle
    b = pristine
    with pytest.raises(BundleError, match="fmri"):
        write_bundle(tmp_path / "bad", manifest=b.manifest, weights=b.weights,
                     fmri=np.full((40, 60), np.nan, np.float32), stimuli=b.stimuli, captions=b.captions,
                     trials=b.trials, image_embeddings=b.image_embeddings, text_embeddings=b.text_embeddings,
                     text_index=b.text_index, mesh=b.mesh, vertex_voxel=b.vertex_voxel,
                     rois={k: {**v, "voxels": v["voxels"].tolist()} for k, v in b.rois.items()})
    assert not (tmp_path / "bad").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bad")]


def test_written_bundle_is_readable_by_others(pristine):
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(pristine.path.stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((pristine.path / "brain_model.safetensors").stat().st_mode) == 0o666 & ~umask


def _half(tmp_path, b):
    from brainview.bundle import write_bundle

    return write_bundle(tmp_path / "half", manifest=b.manifest, weights=b.weights, fmri=b.fmri, stimuli=b.stimuli,
                        captions=b.captions, trials=b.trials, image_embeddings=b.image_embeddings,
                        text_embeddings=b.text_embeddings, text_index=b.text_index, mesh=b.mesh,
                        vertex_voxel=b.vertex_voxel, rois=b.rois, weights_dtype=np.float16)


def test_half_precision_weights_stay_float16_on_disk_and_compute_in_float32(tmp_path, pristine):
    from brainview.decoding.brain_model import BrainModel

    b = pristine
    half = _half(tmp_path, b)
    size = (half.path / "brain_model.safetensors").stat().st_size
    assert size < 0.6 * (pristine.path / "brain_model.safetensors").stat().st_size
    assert half.weights["stage1.weight"].dtype == np.float16  # memory-mapped as stored, never copied whole
    assert isinstance(half.weights["stage1.weight"], np.memmap)
    model = BrainModel.from_bundle(half)
    assert model.stage("stage1").weight.dtype == np.float16  # the model keeps them as stored, too
    predicted = model.predict(b.fmri, "stage1")  # block-wise float32 arithmetic
    assert predicted.dtype == np.float32
    reference = BrainModel.from_bundle(pristine).predict(b.fmri, "stage1")
    assert np.allclose(predicted, reference, atol=2e-3)


@pytest.mark.parametrize("where", ["first", "chunk edge", "last"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_streamed_validation_finds_a_bad_value_anywhere(tmp_path, pristine, monkeypatch, where, value):
    """Arrays are scanned in chunks read from the file; a NaN or inf in any chunk, float16 or float32,
    is still refused."""
    import struct

    from brainview.bundle import reader

    half = _half(tmp_path, pristine)
    monkeypatch.setattr(reader, "_CHUNK_BYTES", 64)  # many chunks even in a small bundle
    path = half.path / "brain_model.safetensors"
    raw = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    spec = json.loads(raw[8:8 + n])["stage2.weight"]
    begin, end = spec["data_offsets"]
    count = (end - begin) // 2
    row_len = spec["shape"][1]
    index = {"first": 0, "chunk edge": max(1, 32 // row_len) * row_len, "last": count - 1}[where]
    at = 8 + n + begin + 2 * index
    raw[at:at + 2] = np.array([value], dtype=np.float16).tobytes()
    path.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match='tensor "stage2.weight" contains NaN or infinite'):
        open_bundle(half.path)
    fmri = np.array(np.load(half.path / "test" / "fmri.npy"))
    fmri.reshape(-1)[{"first": 0, "chunk edge": 16, "last": -1}[where]] = value
    np.save(half.path / "test" / "fmri.npy", fmri)
    with pytest.raises(BundleError, match="fmri.npy: contains NaN or infinite"):
        open_bundle(half.path)


# --------------------------------------------------------------------------- the optional QA set

QA_ITEM = {"type": "colour", "question": "what colour is it?", "answers": ["red"]}


def _write_questions(bundle_dir, value) -> None:
    (bundle_dir / "test" / "questions.json").write_text(
        value if isinstance(value, str) else json.dumps(value), encoding="utf-8")


def test_bundle_without_questions_is_valid(pristine):
    assert not (pristine.path / "test" / "questions.json").exists()
    assert open_bundle(pristine.path).questions is None


def test_questions_round_trip(tmp_path):
    from tests.factories import qa_set

    bundle = make_bundle(tmp_path / "qa", n_trials=6, questions=True)
    assert open_bundle(bundle.path).questions == qa_set(6)


@pytest.mark.parametrize("value, message", [
    ("{not json", "is not valid JSON"),
    ({"0": [QA_ITEM]}, "must be a list with, per test trial"),
    ([[QA_ITEM]] * 39, "has questions for 39 trials, expected 40"),
    ([[QA_ITEM]] * 39 + ["colour"], "trial 39: must be a list"),
    ([[QA_ITEM]] * 39 + [[{**QA_ITEM, "answers": []}]], 'trial 39, question 0: "answers" must be a non-empty list'),
    ([[QA_ITEM]] * 39 + [[{**QA_ITEM, "answers": ["red", 3]}]], '"answers" must be a non-empty list'),
    ([[QA_ITEM]] * 39 + [[QA_ITEM, {**QA_ITEM, "question": " "}]], 'trial 39, question 1: "question" must be'),
    ([[QA_ITEM]] * 39 + [[{**QA_ITEM, "type": None}]], '"type" must be a non-empty text'),
    ([[QA_ITEM]] * 39 + [[{**QA_ITEM, "answer": "red"}]], "must be an object"),
])
def test_damaged_questions_are_refused_with_their_own_message(bundle_dir, value, message):
    _write_questions(bundle_dir, value)
    with pytest.raises(BundleError, match="^test/questions.json: ") as info:
        open_bundle(bundle_dir)
    assert message in str(info.value)


def test_questions_may_be_empty_for_a_trial(bundle_dir):
    _write_questions(bundle_dir, [[]] * 39 + [[QA_ITEM]])
    assert open_bundle(bundle_dir).questions[-1] == [QA_ITEM]


@pytest.mark.parametrize("vlm, message", [
    ({"question_prompt": "Question: Answer:"}, '"vlm.question_prompt" must be a text with "{q}"'),
    ({"question_prompt": "{q} {q}"}, "exactly once"),
    ({"question_prompt": "Q: {q} {lang}"}, 'no other "{...}" field'),
    ({"dialogue_turns": -1}, '"vlm.dialogue_turns" must be an integer from 0 to 32'),
    ({"max_answer_tokens": 0}, '"vlm.max_answer_tokens" must be an integer from 1 to 512'),
])
def test_bad_question_settings_are_refused(bundle_dir, vlm, message):
    file = bundle_dir / "manifest.json"
    manifest = json.loads(file.read_text())
    manifest["vlm"].update(vlm)
    file.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="^manifest.json: ") as info:
        open_bundle(bundle_dir)
    assert message in str(info.value)


def test_manifest_is_written_as_strict_json(tmp_path, pristine):
    """A training history may hold a NaN loss; the manifest on disk is JSON other readers accept."""
    from brainview.bundle import write_bundle

    b = pristine
    manifest = {**b.manifest, "provenance": {"history": [{"epoch": 0, "train_loss": float("nan")}]}}
    out = write_bundle(tmp_path / "strict", manifest=manifest, weights=b.weights, fmri=b.fmri, stimuli=b.stimuli,
                       captions=b.captions, trials=b.trials, image_embeddings=b.image_embeddings,
                       text_embeddings=b.text_embeddings, text_index=b.text_index, mesh=b.mesh,
                       vertex_voxel=b.vertex_voxel, rois=b.rois)
    text = (out.path / "manifest.json").read_text()
    assert "NaN" not in text
    assert json.loads(text)["provenance"]["history"][0]["train_loss"] is None
