"""The two tables brain-captioning numbers are reported in, so every number says which one it follows.

``brainhub``: BrainHub's benchmark (UMBRAE, BrainCap, SDRecon, ...): pycocoevalcap scores ×100.
``miccai``: the MICCAI paper's Table 2 (Hugging Face ``evaluate`` METEOR on nltk, ``rouge_score``
ROUGE-1/ROUGE-L F1, embedding similarities), as fractions. The two METEORs differ by about 2× on the
same captions, so numbers from one table are never compared with the other's.
"""

from __future__ import annotations

from dataclasses import dataclass

from brainview.errors import UserError


@dataclass(frozen=True)
class MetricTable:
    """A published table: its columns (label, metric name of :mod:`brainview.decoding.metrics`), the
    factor its numbers are printed with and a one-line description of where it comes from."""

    name: str
    title: str
    columns: tuple[tuple[str, str], ...]
    scale: float
    digits: int
    primary: str  # the metric models are ranked by

    @property
    def metrics(self) -> list[str]:
        return [m for _, m in self.columns]

    def label(self, metric: str) -> str:
        return dict((m, lbl) for lbl, m in self.columns)[metric]

    def text(self, value: float | None) -> str:
        return "—" if value is None else f"{value * self.scale:.{self.digits}f}"


TABLES = {
    "brainhub": MetricTable(
        "brainhub", "BrainHub (pycocoevalcap, ×100; METEOR is METEOR 1.5, ROUGE is pycocoevalcap ROUGE-L)",
        (("BLEU-1", "bleu1"), ("BLEU-2", "bleu2"), ("BLEU-3", "bleu3"), ("BLEU-4", "bleu4"), ("METEOR", "meteor15"),
         ("ROUGE", "rouge_coco"), ("CIDEr", "cider"), ("SPICE", "spice"), ("CLIP-S", "clip_s"),
         ("RefCLIP-S", "refclip_s")),
        scale=100.0, digits=2, primary="cider"),
    "miccai": MetricTable(
        "miccai", "MICCAI 2025 Table 2 (nltk METEOR as in HF evaluate, rouge_score F1, embedding cosines)",
        (("Meteor", "meteor"), ("Rouge-1", "rouge1"), ("Rouge-L", "rougeL"), ("Sentence", "sentence"),
         ("CLIP-B", "clip_b"), ("CLIP-L", "clip_l")),
        scale=1.0, digits=3, primary="meteor"),
}


def metric_table(name: str) -> MetricTable:
    if name not in TABLES:
        raise UserError(f"unknown table {name!r}; choose from {', '.join(TABLES)}")
    return TABLES[name]
