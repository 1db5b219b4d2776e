"""The subjects panel's three tables, filled from what ``StudyDecoding`` returns: the current stimulus in
every subject, the ROI table across subjects (rows ROIs, columns subjects) and the per-subject summary.
Only rendering; the panel (``subjects_panel.py``) decides what to decode and when."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

from brainview.analysis.study import Study
from brainview.analysis.tables import SUBJECT_FIGURES, SUBJECT_SPREAD_ROWS, Table
from brainview.state.session import STAGE_LABELS

NOT_SEEN = "— not seen by this subject —"


def item(text: str, tooltip: str = "", align=None) -> QTableWidgetItem:
    """A read-only cell whose tooltip repeats its text (captions are cut off in narrow columns)."""
    cell = QTableWidgetItem(text)
    cell.setFlags(cell.flags() & ~Qt.ItemIsEditable)
    cell.setToolTip(tooltip or text)
    if align is not None:
        cell.setTextAlignment(align)
    return cell


def _rank(value: int | None, pool: int) -> str:
    return "" if value is None else f"{value} / {pool}"


def fill_stimulus_table(table: QTableWidget, study: Study, key: str, result: dict | None,
                        current: str | None) -> None:
    """One row per subject: image rank, text rank, stage-1/stage-2 captions of stimulus ``key``
    ("…" while ``result`` has no entry for the subject; a subject that did not see it says so)."""
    ids = study.ids
    table.setRowCount(len(ids))
    for row, s in enumerate(ids):
        table.setItem(row, 0, item(s + (" ◀" if s == current else "")))
        if table.columnSpan(row, 1) > 1:
            table.setSpan(row, 1, 1, 1)
        trial = study.stimuli.trial_of(s, key)
        if trial is None:
            table.setSpan(row, 1, 1, 3)
            table.setItem(row, 1, item(NOT_SEEN))
            continue
        decoded = None if result is None else result.get(s)
        if decoded is None:
            for col in range(1, 4):
                table.setItem(row, col, item("…"))
            continue
        last = "stage2" if "stage2" in decoded.image_rank else next(iter(decoded.image_rank))
        table.setItem(row, 1, item(_rank(decoded.image_rank.get(last), decoded.n_images),
                                   f"rank of the true image among {decoded.n_images} ({STAGE_LABELS[last]})",
                                   Qt.AlignCenter))
        table.setItem(row, 2, item(_rank(decoded.text_rank.get("stage2"), decoded.n_texts),
                                   f"rank of the best true caption among {decoded.n_texts} (stage 2)",
                                   Qt.AlignCenter))
        lines = [f"{STAGE_LABELS[stage]}: {decoded.captions.get(stage) or '…'}" for stage in decoded.image_rank]
        table.setItem(row, 3, item("\n".join(lines)))
    header = table.horizontalHeader()
    for col in (0, 1, 2):
        header.setSectionResizeMode(col, QHeaderView.ResizeToContents)
    header.setSectionResizeMode(3, QHeaderView.Stretch)
    table.resizeRowsToContents()


def fill_roi_table(table: QTableWidget, study: Study, names: list[str]) -> None:
    """Rows ``names`` (a check box each), columns the subjects, each cell the ROI's size in that subject."""
    ids = study.ids
    table.blockSignals(True)
    table.clear()
    table.setRowCount(len(names))
    table.setColumnCount(1 + len(ids))
    table.setHorizontalHeaderLabels(["ROI", *ids])
    for row, name in enumerate(names):
        check = QTableWidgetItem(name)
        check.setFlags((check.flags() | Qt.ItemIsUserCheckable) & ~Qt.ItemIsEditable)
        check.setCheckState(Qt.Unchecked)
        table.setItem(row, 0, check)
        for col, s in enumerate(ids, start=1):
            rois = study.bundle(s).rois
            shown = f"({len(rois[name]['voxels'])} voxels)" if name in rois else "(no such ROI)"
            table.setItem(row, col, item(shown))
    table.blockSignals(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(0, QHeaderView.ResizeToContents)
    for col in range(1, 1 + len(ids)):
        header.setSectionResizeMode(col, QHeaderView.Stretch)
    table.resizeRowsToContents()


def show_roi_row(table: QTableWidget, study: Study, row: int, name: str, result: dict | None) -> None:
    """Row ``name``: each subject's caption in ``result``, "decoding…" where it is still missing, the
    ROI's size when unchecked (``result`` None)."""
    for col, s in enumerate(study.ids, start=1):
        rois = study.bundle(s).rois
        if name not in rois:
            text = "(no such ROI)"
        elif result is None or s not in result:
            text = f"({len(rois[name]['voxels'])} voxels)" if result is None else "decoding…"
        else:
            text = result[s]["caption"]
        table.item(row, col).setText(text)
        table.item(row, col).setToolTip(text)
    table.resizeRowsToContents()


def fill_summary_table(table: QTableWidget, rows: Table) -> str:
    """``rows`` (:func:`~brainview.analysis.tables.subjects_table`, what the export writes): each subject's image
    and text top-1 and METEOR, then the mean ± sd (min and max in its tooltips); returns the box's title (with
    the chance level of each retrieval pool)."""
    subjects = range(len(rows["subject"]) - len(SUBJECT_SPREAD_ROWS))
    spread = {rows["subject"][i]: i for i in range(len(subjects), len(rows["subject"]))}
    table.setRowCount(len(subjects) + 1)

    def shown(value: float) -> str:
        return "—" if np.isnan(value) else f"{value:.3f}"

    for row in subjects:
        pool = rows["pool"][row]
        table.setItem(row, 0, item(rows["subject"][row], f"{rows['source'][row]}; {_pool(pool)}-way retrieval"))
        for col, key in enumerate(SUBJECT_FIGURES, start=1):
            table.setItem(row, col, item(shown(rows[key][row]), align=Qt.AlignCenter))
    table.setItem(len(subjects), 0, item("mean ± sd"))
    for col, key in enumerate(SUBJECT_FIGURES, start=1):
        mean, sd = rows[key][spread["mean"]], rows[key][spread["sd"]]
        text = "—" if np.isnan(mean) else f"{mean:.3f} ± {sd:.3f}"
        tip = f"min {shown(rows[key][spread['min']])}, max {shown(rows[key][spread['max']])}"
        table.setItem(len(subjects), col, item(text, tip, Qt.AlignCenter))
    chance = ", ".join(f"{c:.4f}" for c in sorted({rows["chance"][row] for row in subjects}, reverse=True)
                       if not np.isnan(c))
    table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
    table.resizeRowsToContents()
    return f"Summary: top-1 given the brain (chance {chance}), METEOR"


def _pool(pool) -> str:
    return "?" if isinstance(pool, float) and np.isnan(pool) else str(pool)
