"""What the steps after ``prepare`` share: the image order, per-split arrays, the brain model, the models.

Rows of ``image_tokens.npy`` follow ``stimuli.json``: the training images, then validation, then
test. ``text_embeddings.npy`` holds every caption of every image, ``text_index.json`` its
``[image_row, caption_index]``. ``split_data`` hands a step only the rows of the split it asks
for, so a step that never asks for ``"test"`` cannot touch a test image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.nsd.layout import WorkDir, read_json
from training.nsd.prepare import SPLITS

#: caption generation settings: the bundle's defaults (greedy, no prompt, as the paper)
GENERATION = {"prompt": "", "max_new_tokens": 30, "num_beams": 1}


def image_records(work: WorkDir) -> list[dict]:
    """Every prepared image in row order (train, val, test), each with its ``split``."""
    work.require("prepare", "stimuli.json")
    stimuli = read_json(work / "stimuli.json")
    return [{**record, "split": split} for split in SPLITS for record in stimuli[split]]


def split_rows(work: WorkDir) -> dict[str, slice]:
    stimuli = read_json(work / "stimuli.json")
    rows, start = {}, 0
    for split in SPLITS:
        rows[split] = slice(start, start + len(stimuli[split]))
        start += len(stimuli[split])
    return rows


@dataclass
class SplitData:
    """One split: patterns, target query tokens, caption embeddings (``text_index`` rows are local)."""

    name: str
    fmri: np.ndarray  # (n, n_voxels)
    tokens: np.ndarray  # (n, n_query, query_dim)
    texts: np.ndarray  # (n_texts, text_dim), L2-normalized
    text_index: np.ndarray  # (n_texts, 2): [row within the split, caption index]
    records: list[dict]

    def texts_per_image(self, k: int) -> np.ndarray:
        """(n, k, text_dim): the first ``k`` caption embeddings of each image (COCO has at least 5)."""
        out = np.empty((len(self.records), k, self.texts.shape[1]), dtype=np.float32)
        for row in range(len(self.records)):
            mine = np.flatnonzero(self.text_index[:, 0] == row)
            if len(mine) < k:
                raise ValueError(f"image {self.records[row]['nsd_id']} has {len(mine)} captions, fewer than {k}")
            out[row] = self.texts[mine[:k]]
        return out

    @property
    def min_captions(self) -> int:
        return int(np.bincount(self.text_index[:, 0], minlength=len(self.records)).min())


def split_data(work: WorkDir, split: str) -> SplitData:
    """Load one split's arrays (after ``extract``)."""
    work.require("prepare", f"{split}_fmri.npy", "stimuli.json")
    work.require("extract", "image_tokens.npy", "text_embeddings.npy", "text_index.json")
    rows = split_rows(work)[split]
    tokens = np.load(work / "image_tokens.npy", mmap_mode="r")[rows]
    index = np.asarray(read_json(work / "text_index.json"), dtype=np.int64).reshape(-1, 2)
    mine = (index[:, 0] >= rows.start) & (index[:, 0] < rows.stop)
    texts = np.load(work / "text_embeddings.npy", mmap_mode="r")[np.flatnonzero(mine)]
    local = index[mine] - [rows.start, 0]
    return SplitData(split, np.load(work / f"{split}_fmri.npy"), np.array(tokens), np.array(texts), local,
                     read_json(work / "stimuli.json")[split])


def load_brain_model(work: WorkDir, stages=("stage1", "stage2")):
    """The fitted brain model (``brainview.decoding.brain_model.BrainModel``) with the stages found."""
    from safetensors.numpy import load_file

    from brainview.decoding.brain_model import BrainModel, LinearStage

    work.require("fit", "stage1.safetensors")
    tensors = load_file(str(work / "stage1.safetensors"))
    if "stage2" in stages and (work / "stage2.safetensors").exists():
        tensors.update(load_file(str(work / "stage2.safetensors")))
    found = {s: LinearStage(tensors[f"{s}.weight"], tensors[f"{s}.bias"]) for s in stages if f"{s}.weight" in tensors}
    log = work.read_log("extract")
    return BrainModel(found, log["n_query"], log["query_dim"], tensors.get("stage2.projection.weight"),
                      tensors.get("stage2.projection.bias"))


def load_adapter(work: WorkDir, device: str, captioner: bool = True, retrieval: bool = False):
    """BLIP-2 models named in the extract log (the same ones that made the targets)."""
    from brainview.decoding.blip2 import Blip2Adapter

    settings = work.read_log("extract")["settings"]
    return Blip2Adapter.load(settings["captioner"] if captioner else None,
                             settings["retrieval"] if retrieval else None, device=device)
