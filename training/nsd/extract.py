"""Step 2: BLIP-2 targets: query tokens of every stimulus, text embeddings of every caption.

* image tokens: the captioner's (``blip2-opt-2.7b``) Q-Former output before
  ``language_projection`` (``Blip2Adapter.image_query_tokens``), the stage-1 regression targets;
* text embeddings: the retrieval model's (``blip2-itm-vit-g``) ITC text embedding of every COCO
  caption (``Blip2Adapter.text_embeddings``), the stage-2 contrast targets.

The work is cut into chunks of ``batch_size × chunk_batches`` images (or captions); each chunk
is written to ``extract/`` as soon as it is done, under a temporary name then renamed, so an
interrupted run continues with the first missing chunk and never recomputes a finished one.
When every chunk is there they are joined into ``image_tokens.npy``, ``text_embeddings.npy`` and
``text_index.json``.

Several GPUs or nodes: Lightning Fabric launches one process per device (``--devices 4``, or
under ``torchrun`` / SLURM, which Fabric detects); chunk ``c`` belongs to rank
``c mod world_size``. On a GPU the models run in half precision (``Blip2Adapter``'s default), and
only the parts the targets need are loaded (``targets_only``): the captioner without its OPT
language model, the retrieval model without its vision tower.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from brainview.errors import UserError
from training.nsd.data import image_records
from training.nsd.layout import NsdLayout, WorkDir, progress, read_json, save_npy, write_json

ACCELERATORS = {"auto": "auto", "cpu": "cpu", "cuda": "cuda", "gpu": "cuda", "mps": "mps"}


def _reference(ref: str | os.PathLike) -> str:
    """A folder as an absolute path (it stays valid from anywhere), a model id as given."""
    path = Path(ref).expanduser()
    return str(path.resolve()) if path.exists() else str(ref)


def _devices(value) -> int | str:
    text = str(value)
    try:
        return int(text)
    except ValueError:
        return text  # e.g. "0,1" or "auto"


def chunk_ranges(n: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def _chunk_path(work: WorkDir, kind: str, start: int, stop: int) -> Path:
    return work / f"extract/{kind}_{start:07d}_{stop:07d}.npy"


class StimulusReader:
    """Images by nsdId from ``nsd_stimuli.hdf5`` (``imgBrick``, (73000, 425, 425, 3) uint8)."""

    def __init__(self, path: Path):
        import h5py

        self.file = h5py.File(path, "r")
        self.images = self.file["imgBrick"]

    def __call__(self, nsd_ids) -> np.ndarray:
        ids = np.asarray(nsd_ids, dtype=np.int64)
        unique, inverse = np.unique(ids, return_inverse=True)  # h5py wants increasing indices
        return np.asarray(self.images[unique])[inverse]

    def close(self) -> None:
        self.file.close()


def extract(work: str | Path, *, captioner: str, retrieval: str, device: str = "auto", devices="1",
            num_nodes: int = 1, batch_size: int = 32, chunk_batches: int = 8,
            max_chunks: int | None = None) -> bool:
    """Run step 2; returns True when every chunk is done and the joined arrays are written.

    ``max_chunks`` stops each process after that many newly computed chunks (to test resumption).
    """
    from lightning import Fabric

    from brainview.decoding.blip2 import Blip2Adapter

    work = WorkDir(work)
    if device not in ACCELERATORS:
        raise UserError(f"unknown device {device!r}; choose one of {', '.join(ACCELERATORS)}")
    if batch_size < 1 or chunk_batches < 1:
        raise UserError("--batch-size and --chunk-batches must be at least 1")
    records = image_records(work)
    prepared = work.read_log("prepare")["settings"]
    settings = {"captioner": _reference(captioner), "retrieval": _reference(retrieval),
                "chunk_size": batch_size * chunk_batches}
    if work.log_path("extract").is_file():
        previous = work.read_log("extract")["settings"]
        if {k: previous.get(k) for k in settings} == settings:
            progress("extract: already complete, nothing to do")
            return True
        raise UserError(f"{work.path} was extracted with other settings ({previous}); use a new work folder")
    started = work / "extract/settings.json"
    if started.is_file():
        previous = read_json(started)
        if previous != settings:
            raise UserError(f"{work.path}/extract holds chunks made with other settings ({previous}); "
                            "rerun with those or delete the folder")

    captions = [(row, j, text) for row, record in enumerate(records) for j, text in enumerate(record["captions"])]
    size = settings["chunk_size"]
    jobs = [("image", a, b) for a, b in chunk_ranges(len(records), size)]
    jobs += [("text", a, b) for a, b in chunk_ranges(len(captions), size)]

    fabric = Fabric(accelerator=ACCELERATORS[device], devices=_devices(devices), num_nodes=num_nodes,
                    strategy="ddp" if _devices(devices) not in (1, "1") or num_nodes > 1 else "auto")
    fabric.launch()
    rank, world = fabric.global_rank, fabric.world_size
    if rank == 0:
        write_json(started, settings)
    todo = [job for job in jobs[rank::world] if not _chunk_path(work, *job).exists()]
    progress(f"extract rank {rank}/{world}: {len(todo)} of {len(jobs[rank::world])} chunks to do on {fabric.device}")
    if todo:
        adapter = Blip2Adapter.load(captioner, retrieval, device=fabric.device, targets_only=True)
        reader = StimulusReader(NsdLayout(Path(prepared["nsd_root"]), prepared["subject"]).stimuli)
        try:
            for count, (kind, start, stop) in enumerate(todo):
                if max_chunks is not None and count >= max_chunks:
                    progress(f"extract rank {rank}: stopping after {max_chunks} chunks as asked")
                    break
                if kind == "image":
                    images = reader([r["nsd_id"] for r in records[start:stop]])
                    result = adapter.image_query_tokens(images, batch_size=batch_size)
                else:
                    result = adapter.text_embeddings([c[2] for c in captions[start:stop]], batch_size=batch_size)
                save_npy(_chunk_path(work, kind, start, stop), result.astype(np.float32))
                progress(f"extract rank {rank}: {kind} {start}-{stop} done ({count + 1}/{len(todo)})")
        finally:
            reader.close()
    fabric.barrier()
    complete = all(_chunk_path(work, *job).exists() for job in jobs)
    if complete and rank == 0:
        _join(work, jobs, len(records), captions)
        first = np.load(_chunk_path(work, *jobs[0]), mmap_mode="r")
        texts = np.load(work / "text_embeddings.npy", mmap_mode="r")
        work.write_log("extract", settings, batch_size=batch_size, devices=str(devices), num_nodes=num_nodes,
                       world_size=world, n_images=len(records), n_texts=len(captions), n_query=int(first.shape[1]),
                       query_dim=int(first.shape[2]), text_dim=int(texts.shape[1]))
        progress(f"extract: done, {len(records)} images and {len(captions)} captions")
    fabric.barrier()
    return complete


def _join(work: WorkDir, jobs, n_images: int, captions) -> None:
    """Concatenate the chunks into the final arrays, one chunk in memory at a time."""
    from numpy.lib.format import open_memmap

    for kind, name, n in (("image", "image_tokens.npy", n_images), ("text", "text_embeddings.npy", len(captions))):
        parts = [(a, b) for k, a, b in jobs if k == kind]
        first = np.load(_chunk_path(work, kind, *parts[0]), mmap_mode="r")
        tmp = work / f"{name}.tmp.npy"
        out = open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, *first.shape[1:]))
        for a, b in parts:
            out[a:b] = np.load(_chunk_path(work, kind, a, b))
        out.flush()
        del out
        tmp.replace(work / name)
    write_json(work / "text_index.json", [[row, j] for row, j, _ in captions])
