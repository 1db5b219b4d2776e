"""Every table the app shows, as columns ready for CSV (Qt-free): the per-trial table, the ROI table, a
trial's retrieval results and a study's subjects side by side (Table 3 across subjects).

A table is an ordered ``{column: list of values}``; :func:`write_csv` writes it atomically. Values are
plain ``str``, ``int`` or ``float`` so that ``pandas.read_csv`` gives text, integer and float columns;
a column that has no value at all (captions that were never made) is left out rather than written
empty, and a missing single value is an empty cell (NaN in pandas).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainview.analysis.roi_methods import describe_regions
from brainview.analysis.study import mean_and_spread
from brainview.cortex.roi_io import write_atomic
from brainview.decoding.retrieval import first_true_ranks, text_scores

Table = dict[str, list]

#: trial table columns per stage, in order (caption metrics as in the trial browser)
TRIAL_SCORE_COLUMNS = ("meteor", "rougeL", "sentence")


def _stage_suffix(stage: str) -> str:
    return f"s{stage[-1]}"


def text_ranks(session, stage: str, chunk: int = 64) -> np.ndarray | None:
    """Per trial, the rank of its best reference caption among all captions given its brain pattern
    (stage-2 projection; None for a stage without one). Computed in chunks to bound memory."""
    model = session.decoder.model
    if stage != "stage2" or not model.has_text_projection:
        return None
    bundle = session.bundle
    ranks = np.empty(bundle.n_trials, dtype=np.int64)
    owner = np.asarray(bundle.text_index)[:, 0]
    for start in range(0, bundle.n_trials, chunk):
        trials = np.arange(start, min(start + chunk, bundle.n_trials))
        projected = model.project_text(session.decoder.tokens_for_trials(trials, stage))
        scores = text_scores(projected, bundle.text_embeddings)
        ranks[trials] = first_true_ranks(scores, owner[None, :] == trials[:, None])
    return ranks


def trial_table(session, text_rank: dict[str, np.ndarray | None] | None = None) -> Table:
    """The per-trial table: id, source fields, references, each stage's caption, caption scores, image rank
    and (stage 2) text rank. ``text_rank`` may pass ranks already computed by :func:`text_ranks`."""
    session.predict_all()  # every trial's image rank (the window fills them in behind the first trial)
    bundle = session.bundle
    n = bundle.n_trials
    table: Table = {"trial": [session.trial_id(t) for t in range(n)], "index": list(range(n))}
    extra = [key for key in bundle.trials[0] if key != "id"] if n else []
    for key in extra:
        values = [trial.get(key) for trial in bundle.trials]
        if all(v is None or isinstance(v, (str, int, float, bool)) for v in values):
            table[key] = ["" if v is None else v for v in values]
    n_refs = max((len(c) for c in bundle.captions), default=0)
    for i in range(n_refs):
        table[f"reference_{i + 1}"] = [refs[i] if i < len(refs) else "" for refs in bundle.captions]
    for stage in session.stages:
        suffix = _stage_suffix(stage)
        captions = [session.caption(stage, t) for t in range(n)]
        if any(c is not None for c in captions):
            table[f"caption_{suffix}"] = ["" if c is None else c for c in captions]
        for metric in TRIAL_SCORE_COLUMNS:
            values = [session.score(metric, t, stage) for t in range(n)]
            if any(v is not None for v in values):
                table[f"{metric}_{suffix}"] = [float("nan") if v is None else float(v) for v in values]
        image = session.scores.get(stage, {}).get("image_rank")
        if image is not None:
            table[f"image_rank_{suffix}"] = [int(v) for v in image]
        ranks = text_rank[stage] if text_rank is not None and stage in text_rank else text_ranks(session, stage)
        if ranks is not None:
            table[f"text_rank_{suffix}"] = [int(v) for v in ranks]
    return table


def roi_captions(bundle, decoder, stage: str, scale: float | None = None) -> dict[str, str]:
    """Caption of the paper's synthetic pattern of every ROI (slow: the language model runs once per ROI)."""
    regions = {n: bundle.roi_voxels(n) for n in bundle.rois}
    return {n: d["caption"] for n, d in describe_regions(decoder, regions, stage, "paper", scale=scale).items()}


def roi_table(bundle, captions: dict[str, dict[str, str]] | None = None) -> Table:
    """The ROI table: name, group, voxel count and, per stage given, the caption of its synthetic pattern
    (``captions``: stage -> ROI -> caption, as ``brainview roi-table`` makes them)."""
    names = list(bundle.rois)
    table: Table = {"roi": names, "group": [bundle.rois[n]["group"] for n in names],
                    "n_voxels": [int(bundle.roi_voxels(n).size) for n in names]}
    for stage, by_roi in (captions or {}).items():
        table[f"caption_{_stage_suffix(stage)}"] = [by_roi.get(n, "") for n in names]
    return table


@dataclass(frozen=True)
class RetrievedCaption:
    """One retrieved caption: its rank (from 1), the test trial whose reference it is, its score and whether
    it is one of the pattern's own trial's references (a true caption)."""

    rank: int
    trial: int
    trial_id: str
    caption: str
    score: float
    is_true: bool

    #: the columns of :meth:`cells`, the header of a copy with trial ids
    COLUMNS = ("rank", "trial", "score", "caption", "true")

    def line(self) -> str:
        """The row as the retrieved-caption lists show it (and "Copy" copies it)."""
        return (f"{self.score:.3f}  trial {self.trial_id}  {self.caption}"
                + ("  ✓ true caption" if self.is_true else ""))

    def cells(self) -> tuple:
        return self.rank, self.trial_id, f"{self.score:.4f}", self.caption, "true" if self.is_true else ""


def retrieved_captions(bundle, texts, true_trial: int | None) -> list[RetrievedCaption]:
    """A pattern's top-k retrieved captions (``texts``: :attr:`Decoded.texts`) with the test trial each belongs
    to (the bundle's text index → trial) and, given ``true_trial`` (the trial the pattern came from; None for
    a synthetic pattern without one), which are that trial's own references."""
    rows = []
    for rank, (index, score) in enumerate(zip(texts.indices, texts.scores), start=1):
        trial, caption = (int(v) for v in bundle.text_index[int(index)])
        rows.append(RetrievedCaption(rank, trial, bundle.trials[trial]["id"], bundle.captions[trial][caption],
                                     float(score), true_trial is not None and trial == true_trial))
    return rows


def copied_captions(rows: list[RetrievedCaption], trial_ids: bool = False) -> str:
    """Retrieved captions as plain text for the clipboard: each row as the list shows it, or (``trial_ids``)
    tab-separated rank, trial id, score, caption and "true" under a header line, for a spreadsheet."""
    if not trial_ids:
        return "\n".join(row.line() for row in rows)
    return "\n".join("\t".join(str(c) for c in cells) for cells in [RetrievedCaption.COLUMNS,
                                                                   *(row.cells() for row in rows)])


def retrieval_table(session, decoded, true_trial: int | None) -> Table:
    """A pattern's top-k retrievals: one row per retrieved image, then per retrieved caption, with score and
    whether it is the true one (``true_trial``: the trial the pattern came from, None for a synthetic one)."""
    bundle = session.bundle
    table: Table = {"kind": [], "rank": [], "trial": [], "caption": [], "score": [], "is_true": []}

    def add(kind: str, rank: int, trial: int, caption: str, score: float) -> None:
        for key, value in zip(table, (kind, rank + 1, session.trial_id(trial), caption, float(score),
                                      true_trial is not None and trial == true_trial)):
            table[key].append(value)

    for rank, (index, score) in enumerate(zip(decoded.images.indices, decoded.images.scores)):
        add("image", rank, int(index), "", score)
    if decoded.texts is not None:
        for row in retrieved_captions(bundle, decoded.texts, true_trial):
            add("caption", row.rank - 1, row.trial, row.caption, row.score)
    return table


#: the figures of a study's subjects table, in the subjects panel's order: retrieval top-1 given the brain
#: (image, then text) and METEOR
SUBJECT_FIGURES = ("image_given_brain", "text_given_brain", "meteor")
#: the rows after the subjects: the spread of each figure across subjects (sd with n - 1)
SUBJECT_SPREAD_ROWS = ("mean", "sd", "min", "max")


def subjects_table(summaries: dict[str, dict]) -> Table:
    """A study's subjects side by side (the subjects panel's summary, Table 3 across subjects): per subject
    (``summaries``: subject -> :func:`~brainview.analysis.study.evaluation_summary`, with ``stage`` and
    ``source`` where known) the stage, the retrieval pool and its chance level (1 / pool), each figure of
    :data:`SUBJECT_FIGURES` and where the figures come from; then the rows :data:`SUBJECT_SPREAD_ROWS` of
    each figure across subjects. A figure a subject lacks is an empty cell; the spread rows carry the pool
    and chance only where every subject shares one pool."""
    ids = list(summaries)
    table: Table = {"subject": [], "stage": [], "pool": [], "chance": [], **{f: [] for f in SUBJECT_FIGURES},
                    "source": []}

    def figure(summary: dict, name: str) -> float:
        value = summary.get("meteor") if name == "meteor" else summary.get("retrieval", {}).get(name)
        return float("nan") if value is None else float(value)

    def add(subject: str, stage: str, pool, figures: list[float], source: str) -> None:
        row = (subject, stage, float("nan") if pool is None else pool,
               float("nan") if not pool else 1 / pool, *figures, source)
        for column, value in zip(table, row):
            table[column].append(value)

    for s in ids:
        summary = summaries[s]
        add(s, summary.get("stage", ""), summary.get("pool"), [figure(summary, f) for f in SUBJECT_FIGURES],
            summary.get("source", ""))
    pools = {summaries[s].get("pool") for s in ids}
    shared = next(iter(pools)) if len(pools) == 1 else None
    spread = {f: mean_and_spread([figure(summaries[s], f) for s in ids]) for f in SUBJECT_FIGURES}
    for row in SUBJECT_SPREAD_ROWS:
        add(row, "", shared, [float("nan") if spread[f][row] is None else spread[f][row] for f in SUBJECT_FIGURES],
            f"across {len(ids)} subjects")
    if all(isinstance(p, int) for p in table["pool"]):
        table["pool"] = [int(p) for p in table["pool"]]
    return table


def to_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = list(table)
    writer.writerow(columns)
    n = len(table[columns[0]]) if columns else 0
    for row in range(n):
        writer.writerow([_cell(table[c][row]) for c in columns])
    return buffer.getvalue()


def _cell(value):
    if isinstance(value, float):
        return "" if np.isnan(value) else repr(value)
    return value


def write_csv(path: str | Path, table: Table) -> Path:
    """Write ``table`` as UTF-8 CSV with a header row, atomically."""
    return write_atomic(path, to_csv(table).encode("utf-8"))
