"""A bundle is data: none of these bundles may run code, even when stdin answers "y" to every question.

Each vector plants Python that would create a marker file when imported or unpickled, and a way
for brainview (or transformers underneath) to reach it. All vectors run through ``brainview
eval`` in one subprocess with "y" on stdin; each must end with exit status 2, one line on stderr,
and no marker file.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EVIL_CODE = "open({marker!r}, 'w').write('ran')\n"


class _Plant:
    """Unpickling this creates the marker (what torch.load of a pickled checkpoint would do)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (exec, (EVIL_CODE.format(marker=self.marker),))


def _edit_json(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def _plant_code(folder: Path, marker: Path) -> None:
    (folder / "evil.py").write_text(EVIL_CODE.format(marker=str(marker)) + "class Evil:\n    pass\n")


def _auto_map_config(captioner: Path, marker: Path, model_type: str) -> None:
    _plant_code(captioner, marker)
    _edit_json(captioner / "config.json", lambda c: c.update(
        model_type=model_type, auto_map={"AutoConfig": "evil.Evil", "AutoModel": "evil.Evil",
                                         "AutoModelForVision2Seq": "evil.Evil"}))


def _auto_map_in(name: str, key: str):
    def plant(captioner: Path, marker: Path) -> None:
        _plant_code(captioner, marker)
        path = captioner / name
        document = json.loads(path.read_text()) if path.exists() else {}
        document["auto_map"] = {key: ["evil.Evil", None] if key == "AutoTokenizer" else "evil.Evil"}
        path.write_text(json.dumps(document))
    return plant


def _pickled_weights(captioner: Path, marker: Path) -> None:
    (captioner / "model.safetensors").unlink()
    (captioner / "pytorch_model.bin").write_bytes(pickle.dumps(_Plant(str(marker))))


def _outside_folder(bundle: Path, marker: Path) -> Path:
    evil = bundle.parent / "evil_model"
    shutil.copytree(bundle / "vlm" / "captioner", evil)
    _auto_map_config(evil, marker, "evil-blip")
    return evil


def _manifest_points_to(kind: str):
    def plant(bundle: Path, marker: Path) -> None:
        evil = _outside_folder(bundle, marker)
        reference = {"absolute": str(evil), "dotdot": "../evil_model", "home": "~/../" + str(evil)}[kind]
        _edit_json(bundle / "manifest.json", lambda m: m["vlm"].update(captioner=reference))
    return plant


def _vlm_symlinked_out(bundle: Path, marker: Path) -> None:
    evil = _outside_folder(bundle, marker)
    shutil.rmtree(bundle / "vlm" / "captioner")
    (bundle / "vlm" / "captioner").symlink_to(evil)


def _config_symlinked_out(bundle: Path, marker: Path) -> None:
    evil = _outside_folder(bundle, marker)
    (bundle / "vlm" / "captioner" / "config.json").unlink()
    (bundle / "vlm" / "captioner" / "config.json").symlink_to(evil / "config.json")
    shutil.copy(evil / "evil.py", bundle / "vlm" / "captioner" / "evil.py")


def _pickled_npy(bundle: Path, marker: Path) -> None:
    array = np.empty(1, dtype=object)
    array[0] = _Plant(str(marker))
    np.save(bundle / "embeddings" / "image.npy", array, allow_pickle=True)


def _foreign_manifest(bundle: Path, marker: Path) -> None:
    foreign = bundle.parent / "foreign.json"
    shutil.copy(bundle / "manifest.json", foreign)
    (bundle / "manifest.json").unlink()
    (bundle / "manifest.json").symlink_to(foreign)


IN_CAPTIONER = {
    "config auto_map with an unknown model_type": lambda c, m: _auto_map_config(c, m, "evil-blip"),
    "config auto_map with the blip-2 model_type": lambda c, m: _auto_map_config(c, m, "blip-2"),
    "processor_config auto_map": _auto_map_in("processor_config.json", "AutoProcessor"),
    "tokenizer_config auto_map": _auto_map_in("tokenizer_config.json", "AutoTokenizer"),
    "preprocessor_config auto_map": _auto_map_in("preprocessor_config.json", "AutoImageProcessor"),
    "pickled weights (pytorch_model.bin)": _pickled_weights,
}
IN_BUNDLE = {
    "manifest captioner: absolute path": _manifest_points_to("absolute"),
    "manifest captioner: ..": _manifest_points_to("dotdot"),
    "manifest captioner: ~": _manifest_points_to("home"),
    "vlm/captioner symlinked out": _vlm_symlinked_out,
    "a config.json symlinked out": _config_symlinked_out,
    "pickled object array": _pickled_npy,
    "manifest symlinked to a foreign file": _foreign_manifest,
}
VECTORS = list(IN_CAPTIONER) + list(IN_BUNDLE)

RUNNER = """
import contextlib, io, json, sys
from brainview import cli
for path in sys.argv[1:]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = cli.main(["eval", path, "--repeats", "1", "--json", "--device", "cpu"])
        except BaseException as exc:
            rc = "traceback " + type(exc).__name__
    print(json.dumps({"path": path, "rc": rc, "stderr": err.getvalue()}), flush=True)
"""


@pytest.fixture(scope="module")
def vector_results(app_bundle, tmp_path_factory):
    """Build every vector bundle and run them all through ``brainview eval`` with "y" on stdin."""
    root = tmp_path_factory.mktemp("vectors")
    cases = {}
    for i, name in enumerate(VECTORS):
        case = root / f"case{i}"
        bundle = case / "bundle"
        shutil.copytree(app_bundle.path, bundle)
        marker = case / "MARKER"
        if name in IN_CAPTIONER:
            IN_CAPTIONER[name](bundle / "vlm" / "captioner", marker)
        else:
            IN_BUNDLE[name](bundle, marker)
        cases[name] = (bundle, marker)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(Path.cwd())}
    done = subprocess.run([sys.executable, "-c", RUNNER, *[str(b) for b, _ in cases.values()]],
                          input="y\n" * 200, capture_output=True, text=True, timeout=300, env=env, cwd=root)
    by_path = {r["path"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert len(by_path) == len(cases), done.stderr[-2000:]
    return {name: (by_path[str(bundle)], marker) for name, (bundle, marker) in cases.items()}


@pytest.mark.parametrize("vector", VECTORS)
def test_no_code_runs_from_a_bundle(vector_results, vector):
    result, marker = vector_results[vector]
    assert not marker.exists(), f"{vector}: code from the bundle ran"
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    assert result["rc"] == 2 and len(lines) == 1, result
    assert "[y/N]" not in result["stderr"]


def test_the_untouched_bundle_still_captions(app_bundle):
    """The checks above refuse the vectors, not the tiny models every vector was made from."""
    from brainview.decoding.decoder import Decoder

    decoder = Decoder.load(app_bundle, device="cpu")
    assert decoder.can_caption, decoder.captions_missing
