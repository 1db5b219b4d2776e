"""Seeded mutations of a small bundle, and how ``brainview info`` (then ``eval``) treats each one.

Used by ``tests/bundle/test_fuzz.py`` and runnable on its own to print the counts for the issue
note: ``python -m tests.bundle.fuzz [N] [SEED]``. Each mutation is one hostile or careless change
to one file; ``must_refuse`` marks the ones a correct reader has to refuse (the others, such as a
flipped byte inside float data, may be accepted, but then ``eval`` must work on them).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import struct
import sys
import tracemalloc
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: peak Python/numpy allocation allowed while checking one damaged copy of a ~100 kB bundle
MEMORY_LIMIT = 64 * 2**20

NPY_FILES = ("test/fmri.npy", "test/stimuli.npy", "embeddings/image.npy", "embeddings/text.npy")
JSON_FILES = ("manifest.json", "test/captions.json", "test/trials.json", "embeddings/text_index.json",
              "cortex/rois.json")
NPZ_FILES = ("cortex/mesh.npz", "cortex/vertex_voxel.npz")
ALL_FILES = NPY_FILES + JSON_FILES + NPZ_FILES + ("brain_model.safetensors",)


@dataclass
class Mutation:
    name: str
    must_refuse: bool
    apply: Callable[[Path], None]


@dataclass
class Outcome:
    mutation: str
    must_refuse: bool
    verdict: str  # "accepted", "refused", or "other: why"
    detail: str
    peak: int


# ------------------------------------------------------------------ file helpers

def _npy_header(descr: str, shape_text: str, fortran: bool = False) -> bytes:
    text = "{'descr': %r, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape_text)
    total = 10 + len(text) + 1
    text += " " * ((64 - total % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def _npy_body(raw: bytes) -> bytes:
    header_len = struct.unpack("<H", raw[8:10])[0]
    return raw[10 + header_len:]


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _write_npz(path: Path, arrays: dict[str, np.ndarray], raw: dict[str, bytes] | None = None) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
            zf.writestr(f"{key}.npy", buf.getvalue())
        for key, data in (raw or {}).items():
            zf.writestr(f"{key}.npy", data)


def _flip(path: Path, rng: random.Random, start: int = 0, stop: int | None = None, count: int = 1) -> None:
    data = bytearray(path.read_bytes())
    stop = len(data) if stop is None else min(stop, len(data))
    for _ in range(count):
        i = rng.randrange(start, max(start + 1, stop))
        if i < len(data):
            data[i] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


_BOMB: dict[int, bytes] = {}


def _bomb_member(n_bytes: int) -> bytes:
    """A deflated npy member of ``n_bytes`` zeros (cached: compressing it is the slow part)."""
    if n_bytes not in _BOMB:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("extra.npy", "w", force_zip64=True) as f:
            f.write(_npy_header("|u1", f"({n_bytes},)"))
            block = bytes(2**22)
            for _ in range(n_bytes // len(block)):
                f.write(block)
        _BOMB[n_bytes] = buf.getvalue()
    return _BOMB[n_bytes]


# ------------------------------------------------------------------ the mutations

def mutations(root: Path, rng: random.Random) -> list[Mutation]:
    """Every kind of damage, built for the bundle at ``root`` (read for shapes)."""
    manifest = json.loads((root / "manifest.json").read_text())
    m: list[Mutation] = []

    def add(name, must_refuse, fn):
        m.append(Mutation(name, must_refuse, fn))

    for rel in ALL_FILES:
        add(f"{rel}: empty", True, lambda p, rel=rel: (p / rel).write_bytes(b""))
        add(f"{rel}: truncated", True,
            lambda p, rel=rel: (p / rel).write_bytes((p / rel).read_bytes()[:rng.randrange(1, (p / rel).stat().st_size)]))
        add(f"{rel}: random bytes", True, lambda p, rel=rel: (p / rel).write_bytes(rng.randbytes(rng.randrange(1, 4096))))
        add(f"{rel}: deleted", True, lambda p, rel=rel: (p / rel).unlink())
        add(f"{rel}: byte flips", False, lambda p, rel=rel: _flip(p / rel, rng, count=rng.randrange(1, 5)))

        def link_out(p, rel=rel):
            outside = p.parent / f"outside-{rel.replace('/', '-')}"
            shutil.copy(p / rel, outside)
            (p / rel).unlink()
            (p / rel).symlink_to(outside)
        add(f"{rel}: symlink out of the bundle", True, link_out)

    for rel in NPY_FILES:
        def header(p, rel=rel, shape_text=None, descr=None):
            raw = (p / rel).read_bytes()
            arr = np.load(p / rel, mmap_mode="r")
            d = descr or arr.dtype.str
            s = shape_text if shape_text is not None else repr(tuple(arr.shape))
            (p / rel).write_bytes(_npy_header(d, s) + _npy_body(raw))
        for shape_text in ("(4611686018427387904, 48)", "(-1, 48)", "()", "(0, 48)", "(1, 2, 3, 4, 5)",
                           "(1e3, 48)", "(12, 'x')", "(12, 48" ):
            add(f"{rel}: header shape {shape_text}", True, lambda p, rel=rel, s=shape_text: header(p, rel, s))
        for descr in ("<f8", "|b1", "<c8", "|O", "<i4", "<M8[s]"):
            add(f"{rel}: header dtype {descr}", True, lambda p, rel=rel, d=descr: header(p, rel, descr=d))
        add(f"{rel}: header byte flips", False, lambda p, rel=rel: _flip(p / rel, rng, 0, 128, rng.randrange(1, 4)))
        if rel != "test/stimuli.npy":
            def nan(p, rel=rel, value=float("nan")):
                arr = np.array(np.load(p / rel))
                arr.reshape(-1)[rng.randrange(arr.size)] = value
                np.save(p / rel, arr)
            add(f"{rel}: a NaN", True, nan)
            add(f"{rel}: an inf", True, lambda p, rel=rel: nan(p, rel, float("inf")))
        add(f"{rel}: zero rows", True, lambda p, rel=rel: np.save(
            p / rel, np.zeros((0, *np.load(p / rel, mmap_mode="r").shape[1:]), np.load(p / rel, mmap_mode="r").dtype)))
    add("test/stimuli.npy: zero-size images", True,
        lambda p: np.save(p / "test/stimuli.npy", np.zeros((manifest_trials(p), 0, 16, 3), np.uint8)))
    add("embeddings/text.npy: not normalized", True,
        lambda p: np.save(p / "embeddings/text.npy", np.load(p / "embeddings/text.npy") * 3))

    # ---- npz archives
    def npz_member(rel, key, value_fn):
        def apply(p):
            arrays = _read_npz(p / rel)
            if value_fn is None:
                arrays.pop(key)
            else:
                arrays[key] = value_fn(arrays[key], arrays)
            _write_npz(p / rel, arrays)
        return apply

    mesh = "cortex/mesh.npz"
    for hemi in ("lh", "rh"):
        for bad, fn in (("NaN", lambda a, _: np.where(np.arange(a.size) == 3, np.nan, a).astype(np.float32)),
                        ("inf", lambda a, _: np.where(np.arange(a.size) == 3, np.inf, a).astype(np.float32)),
                        ("complex", lambda a, _: a.astype(np.complex64)), ("bool", lambda a, _: a > 0),
                        ("wrong length", lambda a, _: a[:-1]), ("0-d", lambda a, _: np.float32(1.0))):
            add(f"{mesh}: {hemi}_sulc {bad}", True, npz_member(mesh, f"{hemi}_sulc", fn))
        add(f"{mesh}: {hemi}_faces fractional", True, npz_member(mesh, f"{hemi}_faces", lambda a, _: a + 0.5))
        add(f"{mesh}: {hemi}_faces out of range", True, npz_member(mesh, f"{hemi}_faces", lambda a, _: a + 10**6))
        add(f"{mesh}: {hemi}_faces negative", True, npz_member(mesh, f"{hemi}_faces", lambda a, _: a - 1))
        add(f"{mesh}: {hemi}_faces none", True, npz_member(mesh, f"{hemi}_faces", lambda a, _: a[:0]))
        add(f"{mesh}: {hemi}_faces int64 overflow", True,
            npz_member(mesh, f"{hemi}_faces", lambda a, _: a.astype(np.int64) + 2**40))
        add(f"{mesh}: {hemi}_inflated NaN", True,
            npz_member(mesh, f"{hemi}_inflated", lambda a, _: np.where(a > 40, np.nan, a).astype(np.float32)))
        add(f"{mesh}: {hemi}_pial wrong shape", True, npz_member(mesh, f"{hemi}_pial", lambda a, _: a[:, :2]))
        add(f"{mesh}: {hemi}_pial missing", True, npz_member(mesh, f"{hemi}_pial", None))

        def empty_hemi(p, hemi=hemi):
            arrays = _read_npz(p / mesh)
            arrays.update({f"{hemi}_inflated": np.zeros((0, 3), np.float32), f"{hemi}_pial": np.zeros((0, 3), np.float32),
                           f"{hemi}_faces": np.zeros((0, 3), np.int32), f"{hemi}_sulc": np.zeros(0, np.float32)})
            _write_npz(p / mesh, arrays)
        add(f"{mesh}: {hemi} has no vertices", True, empty_hemi)

    def npz_raw(rel, key, shape_text):
        def apply(p):
            arrays = _read_npz(p / rel)
            arr = arrays.pop(key)
            _write_npz(p / rel, arrays, {key: _npy_header(arr.dtype.str, shape_text) + arr.tobytes()})
        return apply
    add(f"{mesh}: member claims 1e12 elements", True, npz_raw(mesh, "lh_sulc", "(1000000000000,)"))
    add(f"{mesh}: member claims shape -1", True, npz_raw(mesh, "rh_sulc", "(-1,)"))

    for rel in NPZ_FILES:
        add(f"{rel}: an extra 256 MB deflated member", False, lambda p, rel=rel: _append_raw_member(p / rel))
        add(f"{rel}: compressed byte flips", False,
            lambda p, rel=rel: _flip(p / rel, rng, 64, (p / rel).stat().st_size - 200, rng.randrange(1, 4)))

    vv = "cortex/vertex_voxel.npz"
    add(f"{vv}: format bcsr", True, npz_member(vv, "format", lambda a, _: np.array(b"bcsr")))
    add(f"{vv}: format csc", True, npz_member(vv, "format", lambda a, _: np.array(b"csc")))
    add(f"{vv}: fractional indices", True, npz_member(vv, "indices", lambda a, _: a + 0.25))
    add(f"{vv}: indices out of range", True, npz_member(vv, "indices", lambda a, _: a + 10**9))
    add(f"{vv}: decreasing indptr", True, npz_member(vv, "indptr", lambda a, _: a[::-1].copy()))
    add(f"{vv}: negative weights", True, npz_member(vv, "data", lambda a, _: -a))
    add(f"{vv}: NaN weights", True, npz_member(vv, "data", lambda a, _: a * np.nan))
    add(f"{vv}: shape mismatch", True, npz_member(vv, "shape", lambda a, _: a + 1))
    add(f"{vv}: shape 2**62", True, npz_member(vv, "shape", lambda a, _: np.array([2**62, 2**62])))
    add(f"{vv}: data missing", True, npz_member(vv, "data", None))
    add(f"{vv}: 2-d data", True, npz_member(vv, "data", lambda a, _: a.reshape(1, -1)))

    # ---- JSON
    def put_json(rel, value_fn, raw: str | None = None):
        def apply(p):
            if raw is not None:
                (p / rel).write_text(raw)
                return
            doc = json.loads((p / rel).read_text())
            (p / rel).write_text(json.dumps(value_fn(doc), allow_nan=True))
        return apply
    deep = "[" * 100000 + "]" * 100000
    for rel in JSON_FILES:
        add(f"{rel}: 100k-deep JSON", True, put_json(rel, None, deep))
        add(f"{rel}: not UTF-8", True, lambda p, rel=rel: (p / rel).write_bytes(b"\xff\xfe" + (p / rel).read_bytes()))
        add(f"{rel}: a 4,301-digit integer", True, put_json(rel, None, "[" + "9" * 4301 + "]"))
    bad_values = {"null": None, "string": "x", "negative": -1, "zero": 0, "1e30": 1e30, "NaN": float("nan"),
                  "bool": True, "list": [], "2**70": 2**70, "float": 4.5}
    for key in ("n_voxels", "n_query", "query_dim", "text_dim", "version"):
        for label, value in bad_values.items():
            add(f"manifest {key} = {label}", True,
                put_json("manifest.json", lambda d, key=key, value=value: {**d, key: value}))
    for key in ("stages", "vlm", "synthetic", "provenance", "metrics", "name", "format"):
        add(f"manifest {key} = null", True, put_json("manifest.json", lambda d, key=key: {**d, key: None}))
        add(f"manifest {key} missing", True,
            put_json("manifest.json", lambda d, key=key: {k: v for k, v in d.items() if k != key}))
    for label, value in (("a lone surrogate", "\ud800 name"), ("ANSI escapes", "\x1b[2J\x1b[31mred"),
                         ("control characters", "a\rb\x07"), ("long", "n" * 5000)):
        add(f"manifest name with {label}", False, put_json("manifest.json", lambda d, value=value: {**d, "name": value}))
    vlm_bad = {"max_new_tokens": ("x", None, float("nan"), 1e30, 0, -3, 10**6, 2.5, True),
               "num_beams": ("x", None, float("nan"), 1e30, 0, 10**6, 2.5, False),
               "prompt": (5, None, ["a"], "p" * 100000), "captioner": (True, 5, "/etc", "../outside", "~/model", ""),
               "retrieval": (True, 3.5, "/", "vlm/../../x"), "unknown_key": ("x",)}
    for key, values in vlm_bad.items():
        for value in values:
            add(f"manifest vlm.{key} = {value!r:.20}", True,
                put_json("manifest.json", lambda d, key=key, value=value: {**d, "vlm": {**d["vlm"], key: value}}))
    for value in (None, "x", -1, 0, float("nan"), float("inf"), 1e300):
        add(f"manifest synthetic.scale = {value!r}", True,
            put_json("manifest.json", lambda d, value=value: {**d, "synthetic": {"scale": value}}))
    for value in ([], ["stage3"], ["stage1", "stage1"], "stage1", [1]):
        add(f"manifest stages = {value!r}", True, put_json("manifest.json", lambda d, value=value: {**d, "stages": value}))
    add("manifest: NaN literal", True, put_json("manifest.json", None, (root / "manifest.json").read_text()
                                                .replace('"n_query": 4', '"n_query": NaN')))
    add("manifest: a list", True, put_json("manifest.json", lambda d: [d]))

    cap, tri, idx, rois = JSON_FILES[1], JSON_FILES[2], JSON_FILES[3], JSON_FILES[4]
    add(f"{cap}: a trial without captions", True, put_json(cap, lambda d: [[]] + d[1:]))
    add(f"{cap}: a number as caption", True, put_json(cap, lambda d: [[1]] + d[1:]))
    add(f"{cap}: one trial short", True, put_json(cap, lambda d: d[:-1]))
    add(f"{cap}: a lone surrogate", False, put_json(cap, lambda d: [["\udc80 cap"]] + d[1:]))
    add(f"{tri}: duplicate ids", True, put_json(tri, lambda d: [d[1]] + d[1:]))
    add(f"{tri}: numeric id", True, put_json(tri, lambda d: [{**d[0], "id": 7}] + d[1:]))
    add(f"{tri}: not objects", True, put_json(tri, lambda d: ["t"] + d[1:]))
    add(f"{idx}: fractional index", True, put_json(idx, lambda d: [[0.5, 0]] + d[1:]))
    add(f"{idx}: index out of range", True, put_json(idx, lambda d: [[10**6, 0]] + d[1:]))
    add(f"{idx}: index 2**63", True, put_json(idx, lambda d: [[2**63, 0]] + d[1:]))
    add(f"{idx}: negative index", True, put_json(idx, lambda d: [[-1, 0]] + d[1:]))
    add(f"{idx}: a trial with no text", True,
        put_json(idx, lambda d: [[1 if t == 0 else t, c] for t, c in d]))
    add(f"{idx}: triples", True, put_json(idx, lambda d: [[0, 0, 0]] + d[1:]))
    first = lambda d: next(iter(d))  # noqa: E731
    add(f"{rois}: voxel 2**63", True, put_json(rois, lambda d: {**d, first(d): {**d[first(d)], "voxels": [2**63]}}))
    add(f"{rois}: fractional voxel", True, put_json(rois, lambda d: {**d, first(d): {**d[first(d)], "voxels": [1.5]}}))
    add(f"{rois}: negative voxel", True, put_json(rois, lambda d: {**d, first(d): {**d[first(d)], "voxels": [-2]}}))
    add(f"{rois}: voxel out of range", True, put_json(rois, lambda d: {**d, first(d): {**d[first(d)], "voxels": [10**5]}}))
    add(f"{rois}: no voxels", True, put_json(rois, lambda d: {**d, first(d): {**d[first(d)], "voxels": []}}))
    add(f"{rois}: group missing", True, put_json(rois, lambda d: {**d, first(d): {"voxels": [1]}}))
    add(f"{rois}: a list", True, put_json(rois, lambda d: list(d)))
    add(f"{rois}: ANSI escapes in a name", False, put_json(rois, lambda d: {"\x1b[31mV9": d[first(d)], **d}))
    add(f"{rois}: none at all", False, put_json(rois, lambda d: {}))

    # ---- safetensors
    st = "brain_model.safetensors"

    def st_header(p, edit):
        raw = (p / st).read_bytes()
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        new = edit(header)
        text = new if isinstance(new, bytes) else json.dumps(new).encode()
        (p / st).write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    add(f"{st}: header length 2**63", True, lambda p: (p / st).write_bytes(struct.pack("<Q", 2**63) + (p / st).read_bytes()[8:]))
    add(f"{st}: header length beyond the file", True,
        lambda p: (p / st).write_bytes(struct.pack("<Q", 10**9) + (p / st).read_bytes()[8:]))
    for dtype in ("BF16", "F8_E4M3", "F64", "I32", "BOOL", "XX"):
        add(f"{st}: dtype {dtype}", True,
            lambda p, dtype=dtype: st_header(p, lambda h: {k: ({**v, "dtype": dtype} if k == "stage1.weight" else v)
                                                          for k, v in h.items()}))
    add(f"{st}: shape 2**62", True, lambda p: st_header(p, lambda h: {
        k: ({**v, "shape": [2**62, 2]} if k == "stage1.bias" else v) for k, v in h.items()}))
    add(f"{st}: offsets past the end", True, lambda p: st_header(p, lambda h: {
        k: ({**v, "data_offsets": [v["data_offsets"][0], 10**12]} if k == "stage1.bias" else v) for k, v in h.items()}))
    add(f"{st}: deep header", True, lambda p: st_header(p, lambda h: deep.encode()))
    add(f"{st}: a tensor missing", True, lambda p: st_header(p, lambda h: {k: v for k, v in h.items() if k != "stage1.bias"}))

    def st_nan(p):
        from safetensors.numpy import load_file, save_file
        w = load_file(str(p / st))
        w["stage1.weight"] = w["stage1.weight"].copy()
        w["stage1.weight"][0, 0] = np.nan
        save_file(w, str(p / st))
    add(f"{st}: a NaN weight", True, st_nan)

    # ---- the bundle folder and vlm references
    add("manifest: symlinked to a foreign JSON file", True, lambda p: _link_foreign_manifest(p))
    add("bundle: a stray file at vlm", False, lambda p: (p / "vlm").write_text("x"))
    return m


def manifest_trials(p: Path) -> int:
    return len(json.loads((p / "test/trials.json").read_text()))


def _append_raw_member(path: Path) -> None:
    """Add a deflated member of 256 MB zeros without decompressing it (copied as raw compressed bytes)."""
    payload = _bomb_member(2**28)
    with zipfile.ZipFile(io.BytesIO(payload)) as src:
        info = src.getinfo("extra.npy")
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        compressed = payload[start:start + info.compress_size]
    with zipfile.ZipFile(path, "a") as dst:
        new = zipfile.ZipInfo("extra.npy", date_time=(2020, 1, 1, 0, 0, 0))
        new.compress_type = zipfile.ZIP_DEFLATED
        new.CRC, new.compress_size, new.file_size = info.CRC, info.compress_size, info.file_size
        # write the local header and the raw deflate stream ourselves
        dst.fp.seek(dst.start_dir)
        new.header_offset = dst.start_dir
        new.flag_bits = 0
        dst.fp.write(new.FileHeader(zip64=True))
        dst.fp.write(compressed)
        dst.start_dir = dst.fp.tell()
        dst.filelist.append(new)
        dst.NameToInfo[new.filename] = new
        dst._didModify = True


def _link_foreign_manifest(p: Path) -> None:
    foreign = p.parent / "foreign.json"
    doc = json.loads((p / "manifest.json").read_text())
    doc["name"] = "SECRET-FROM-OUTSIDE"
    foreign.write_text(json.dumps(doc))
    (p / "manifest.json").unlink()
    (p / "manifest.json").symlink_to(foreign)


# ------------------------------------------------------------------ running

def run_cli(argv: list[str]) -> tuple[object, str, str, int]:
    """``brainview`` in-process: (exit status or "traceback", stdout, stderr, peak traced bytes)."""
    from brainview import cli

    out, err = io.StringIO(), io.StringIO()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc: object = cli.main(argv)
            except SystemExit as exc:
                rc = exc.code
            except BaseException as exc:  # noqa: BLE001 - the point is to see it
                rc = f"traceback: {type(exc).__name__}: {str(exc)[:120]}"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return rc, out.getvalue(), err.getvalue(), peak


def classify(path: Path, mutation: Mutation) -> Outcome:
    rc, out, err, peak = run_cli(["info", str(path)])
    lines = [line for line in err.splitlines() if line.strip()]
    if peak > MEMORY_LIMIT:
        return Outcome(mutation.name, mutation.must_refuse, "other: memory", f"peak {peak / 2**20:.0f} MiB", peak)
    if rc == 2 and len(lines) == 1:
        return Outcome(mutation.name, mutation.must_refuse, "refused", lines[0], peak)
    if rc == 0:
        if mutation.must_refuse:
            return Outcome(mutation.name, True, "other: accepted", out.splitlines()[0] if out else "", peak)
        rc2, _, err2, peak2 = run_cli(["eval", str(path), "--no-captions", "--repeats", "2", "--json"])
        if rc2 != 0 or peak2 > MEMORY_LIMIT:
            return Outcome(mutation.name, False, "other: eval fails", f"{rc2} {err2.strip()[:200]}", peak2)
        return Outcome(mutation.name, False, "accepted", "", peak)
    return Outcome(mutation.name, mutation.must_refuse, "other: " + str(rc)[:60], err.strip()[-300:], peak)


def run(bundle: Path, work: Path, n: int = 300, seed: int = 0) -> list[Outcome]:
    """Apply ``n`` seeded mutations (every kind at least once when ``n`` allows) to copies of ``bundle``."""
    rng = random.Random(seed)
    kinds = mutations(bundle, rng)
    order = list(range(len(kinds)))
    rng.shuffle(order)
    picks = (order * (n // len(order) + 1))[:n] if n >= len(order) else rng.sample(order, n)
    outcomes = []
    for i, k in enumerate(picks):
        case = work / f"case{i}"
        shutil.copytree(bundle, case / "bundle", symlinks=True)
        try:
            kinds[k].apply(case / "bundle")
        except Exception as exc:  # noqa: BLE001 - a mutation that does not apply to this bundle
            raise RuntimeError(f"mutation {kinds[k].name!r} failed to apply: {exc!r}") from exc
        outcomes.append(classify(case / "bundle", kinds[k]))
        shutil.rmtree(case)
    return outcomes


def summary(outcomes: list[Outcome]) -> dict[str, int]:
    counts = {"accepted": 0, "refused cleanly": 0, "anything else": 0}
    for o in outcomes:
        key = "accepted" if o.verdict == "accepted" else "refused cleanly" if o.verdict == "refused" else "anything else"
        counts[key] += 1
    return counts


def main() -> None:
    import tempfile

    from tests.factories import make_bundle

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    with tempfile.TemporaryDirectory() as tmp:
        bundle = make_bundle(Path(tmp) / "small", n_trials=12, n_voxels=48, subdivisions=1).path
        outcomes = run(bundle, Path(tmp), n=n, seed=seed)
    for o in outcomes:
        if o.verdict not in ("accepted", "refused"):
            print(f"{o.verdict:<22} {o.mutation}: {o.detail[:160]!r}")
    print(json.dumps({"mutations": n, **summary(outcomes), "max_peak_MiB": round(max(o.peak for o in outcomes) / 2**20, 1)}))


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
