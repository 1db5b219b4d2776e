"""The trial table: every test trial with its decoded captions and per-trial scores, for hunting failures.

``QtTrialTableModel`` reads the :class:`~brainview.state.session.Session`; ``QtTrialFilterProxy`` sorts
numerically (missing scores last) and filters on ids, decoded and reference captions;
``QtTrialBrowser`` adds the filter box, the score chooser and the "worst first" preset. Moving the
current row (mouse or up/down keys) sets the session's trial, which updates every other panel.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QAbstractTableModel, QItemSelectionModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton,
                               QTableView, QVBoxLayout, QWidget)

from brainview.state.other_models import KEY_PREFIX as MODEL_KEY
from brainview.state.session import CAPTION_SCORES, SCORE_LABELS, STAGE_LABELS, Session, higher_is_better

SORT_ROLE = Qt.UserRole + 1
TRIAL_ROLE = Qt.UserRole + 2
NUMERIC_KINDS = ("score", "rank", "match", "model_score", "model_diff")


def _model_header(session, kind: str, name: str | None) -> str:
    """Other models' columns: caption, score, and the chosen pair's difference."""
    pair = session.other_models.pair
    if kind == "model":
        return name
    if kind == "model_score":
        return session.score_label(MODEL_KEY + name)
    return f"{pair[0]} − {pair[1]}" if pair else "A − B"


class QtTrialTableModel(QAbstractTableModel):
    """Columns: id, caption per stage, the current stage's caption scores, image rank per stage, and the
    searched phrase's score from the brain and from the true image (``session.language``)."""

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.columns: list[tuple[str, str | None]] = []  # (kind, stage or score)
        session.connect("bundle", lambda s: self._reset())
        session.connect("scores", lambda s: self._refresh())
        session.connect("captions", lambda s: self._refresh())
        session.connect("stage", lambda s: self._refresh(headers=True))
        session.repeats.connect("choice", lambda r: self._refresh())  # ranks from the chosen repeat
        session.language.connect("search", lambda t: self._refresh(headers=True))
        session.other_models.connect("models", lambda m: self._reset())

    def _reset(self) -> None:
        self.beginResetModel()
        stages = self.session.stages
        self.columns = ([("id", None), ("match", "brain"), ("match", "image")] + [("caption", s) for s in stages]
                        + [("score", m) for m in CAPTION_SCORES] + [("rank", s) for s in stages])
        models = self.session.other_models.names
        self.columns += [(kind, n) for n in models for kind in ("model", "model_score")]
        self.columns += [("model_diff", None)] if len(models) >= 2 else []
        self.endResetModel()

    def _refresh(self, headers: bool = False) -> None:
        if self.rowCount() == 0:
            return
        if headers:
            self.headerDataChanged.emit(Qt.Horizontal, 0, self.columnCount() - 1)
        self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, self.columnCount() - 1))

    def column_of(self, kind: str, key: str | None = None) -> int:
        return self.columns.index((kind, key))

    def score_column(self, score: str) -> int:
        """The column that sorts by ``score`` for the current stage."""
        if score == "image_rank":
            return self.column_of("rank", self.session.stage)
        if score.startswith(MODEL_KEY):
            return self.column_of("model_score", score[len(MODEL_KEY):])
        return self.column_of("score", score)

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else self.session.n_trials

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section, orientation, role=Qt.DisplayRole):  # noqa: N802 - Qt API
        if orientation != Qt.Horizontal or not 0 <= section < len(self.columns):
            return super().headerData(section, orientation, role)
        kind, key = self.columns[section]
        if role == Qt.DisplayRole:
            if kind == "id":
                return "trial"
            if kind == "caption":
                return f"caption {STAGE_LABELS[key][-1]}"
            if kind == "score":
                return f"{SCORE_LABELS[key]} s{self.session.stage[-1]}"
            if kind == "match":
                return "match" if key == "brain" else "match img"
            if kind in ("model", "model_score", "model_diff"):
                return _model_header(self.session, kind, key)
            return f"rank s{key[-1]}"
        if role == Qt.ToolTipRole:
            if kind == "match":
                search = self.session.language.search
                phrase = f"“{search.phrase}”" if search else "the searched phrase"
                return (f"score of {phrase} from the brain pattern (stage 2)" if key == "brain"
                        else f"score of {phrase} from the trial's true image tokens (a perfect decoder)")
            if kind == "score":
                why = self.session.missing_scores.get(key)
                stage = STAGE_LABELS[self.session.stage]
                return why or f"{SCORE_LABELS[key]} of the {stage} caption against the references"
            if kind == "rank":
                return f"rank of the true image among all test images ({STAGE_LABELS[key]}; 1 is best)"
        return None

    def _value(self, row: int, kind: str, key: str | None):
        session = self.session
        if kind == "id":
            return session.trial_id(row)
        if kind == "caption":
            return session.caption(key, row)
        if kind == "score":
            return session.score(key, row)
        if kind == "match":
            return session.language.match_score(row, key)
        if kind == "model":
            return session.other_models.caption(key, row)
        if kind == "model_score":
            return session.other_models.score(key, row)
        if kind == "model_diff":
            return session.other_models.difference(row)
        return session.score("image_rank", row, stage=key)

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        row = index.row()
        kind, key = self.columns[index.column()]
        if role == TRIAL_ROLE:
            return row
        value = self._value(row, kind, key)
        if role == Qt.DisplayRole:
            if value is None:
                return "…" if kind == "caption" and self.session.can_caption else "—"
            if kind in ("score", "match", "model_score", "model_diff"):
                return f"{value:.3f}"
            if kind == "rank":
                return str(int(value))
            return value
        if role == SORT_ROLE:
            if kind in NUMERIC_KINDS:
                return math.nan if value is None else float(value)
            return "" if value is None else str(value).lower()
        if role == Qt.ToolTipRole and kind in ("caption", "model") and value:
            return value
        if role == Qt.TextAlignmentRole and kind in NUMERIC_KINDS:
            return int(Qt.AlignRight | Qt.AlignVCenter)
        return None


class QtTrialFilterProxy(QSortFilterProxyModel):
    """Numeric sorting with missing values last; a filter on ids, decoded and reference captions."""

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self._needle = ""
        self.setSortRole(SORT_ROLE)

    def set_text(self, text: str) -> None:
        self._needle = text.strip().lower()
        self.invalidateFilter()

    def filterAcceptsRow(self, row, parent) -> bool:  # noqa: N802 - Qt API
        if not self._needle:
            return True
        session = self.session
        texts = [session.trial_id(row), *session.references(row)]
        texts += [c for c in (session.caption(s, row) for s in session.stages) if c]
        return any(self._needle in t.lower() for t in texts)

    def lessThan(self, left, right) -> bool:  # noqa: N802 - Qt API
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if isinstance(a, float) or isinstance(b, float):
            # NaN (missing) sorts after every number whatever the order: flip it for descending sorts
            a_missing, b_missing = a is None or math.isnan(a), b is None or math.isnan(b)
            if a_missing or b_missing:
                descending = self.sortOrder() == Qt.DescendingOrder
                return (a_missing and not b_missing) if descending else (b_missing and not a_missing)
            if a == b:
                return left.row() < right.row()
        return a < b


class QtTrialBrowser(QWidget):
    """Table of test trials, sortable and filterable, with a "worst first" preset."""

    trial_selected = Signal(int)

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.model = QtTrialTableModel(session, self)
        self.proxy = QtTrialFilterProxy(session, self)
        self.proxy.setSourceModel(self.model)

        self.filter_edit = QLineEdit(placeholderText="Filter trials by id or caption…", clearButtonEnabled=True)
        self.filter_edit.textChanged.connect(self.proxy.set_text)
        self._preferred_score: str | None = None
        self.score_combo = QComboBox(toolTip="The score that 'Worst first' sorts by and the histogram shows")
        self.score_combo.currentIndexChanged.connect(self._score_chosen)
        self.worst_button = QPushButton("Worst first", toolTip="Sort by the chosen score, worst trials on top")
        self.worst_button.clicked.connect(self.worst_first)
        self.count_label = QLabel()
        self.count_label.setObjectName("muted")

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setHighlightSections(False)
        self.table.horizontalHeader().setStretchLastSection(False)
        self.table.horizontalHeader().setResizeContentsPrecision(100)  # ids look alike: sizing reads 100 rows, not 1,000
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self.proxy.layoutChanged.connect(self._keep_current_visible)
        self.proxy.rowsInserted.connect(self._update_count)
        self.proxy.rowsRemoved.connect(self._update_count)
        self.proxy.modelReset.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Score"))
        controls.addWidget(self.score_combo, 1)
        controls.addWidget(self.worst_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.filter_edit)
        layout.addLayout(controls)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.count_label)

        session.connect("bundle", lambda s: self._on_bundle())
        session.connect("scores", lambda s: self._fill_scores())
        session.other_models.connect("models", lambda m: self._fill_scores())
        session.connect("trial", lambda s: self.select_trial(s.trial))
        session.language.connect("search", lambda t: self._show_match_columns())

    # ----------------------------------------------------------------- state

    @property
    def score(self) -> str | None:
        return self.score_combo.currentData()

    @property
    def chosen_score(self) -> str | None:
        """The score the user chose: the one shown, or a restored session's choice still waiting for its
        values (a session saved meanwhile keeps it)."""
        return self._preferred_score or self.score

    def _on_bundle(self) -> None:
        header = self.table.horizontalHeader()
        room = header.fontMetrics().horizontalAdvance("M") * 2  # the sort arrow and the margins
        for column, (kind, _) in enumerate(self.model.columns):
            header.setSectionResizeMode(column, QHeaderView.Interactive)
            title = header.fontMetrics().horizontalAdvance(self.model.headerData(column, Qt.Horizontal))
            self.table.setColumnWidth(column, {"caption": 190}.get(kind, max(72, title + room)))
        self.table.resizeColumnToContents(self.model.column_of("id"))
        self.table.sortByColumn(-1, Qt.AscendingOrder)
        self._show_match_columns()
        self._fill_scores()
        self.select_trial(self.session.trial)
        self._update_count()

    def prefer_score(self, name: str | None) -> None:
        """Choose the score ``name`` now, or as soon as it has values (a restored session's choice)."""
        self._preferred_score = name
        self._fill_scores()

    def _fill_scores(self) -> None:
        current = self._preferred_score
        if current not in self.session.available_scores():
            current = self.score
        else:
            self._preferred_score = None
        self.score_combo.blockSignals(True)
        self.score_combo.clear()
        for name in self.session.available_scores():
            self.score_combo.addItem(self.session.score_label(name), name)
        index = self.score_combo.findData(current)
        self.score_combo.setCurrentIndex(max(index, 0))
        self.score_combo.blockSignals(False)
        self._score_chosen()

    def _score_chosen(self) -> None:
        if self.score is not None:
            self.session.set_score_name(self.score)

    def _update_count(self, *args) -> None:
        shown, total = self.proxy.rowCount(), self.session.n_trials
        self.count_label.setText(f"{shown} of {total} trials" if shown != total else f"{total} trials")

    # ----------------------------------------------------------------- actions

    def worst_first(self) -> None:
        """Sort by the chosen score from worst to best and go to the worst trial."""
        score = self.score
        if score is None:
            return
        order = Qt.AscendingOrder if higher_is_better(score) else Qt.DescendingOrder
        self.table.sortByColumn(self.model.score_column(score), order)
        if self.proxy.rowCount():
            self.table.setCurrentIndex(self.proxy.index(0, 0))
            self.table.scrollToTop()

    def _show_match_columns(self) -> None:
        """The phrase columns are there while a search result is."""
        shown = self.session.language.search is not None
        for key in ("brain", "image"):
            if ("match", key) in self.model.columns:
                self.table.setColumnHidden(self.model.column_of("match", key), not shown)

    def sort_by_match(self) -> None:
        """Best brain match of the searched phrase first, and go to it."""
        if self.session.language.search is None:
            return
        self.table.sortByColumn(self.model.column_of("match", "brain"), Qt.DescendingOrder)
        if self.proxy.rowCount():
            self.table.setCurrentIndex(self.proxy.index(0, 0))
            self.table.scrollToTop()

    def sort_by_difference(self) -> None:
        """Other models: where model A beats model B most first (``session.other_models.pair``), and go there."""
        if ("model_diff", None) not in self.model.columns or self.session.other_models.pair is None:
            return
        self.model.headerDataChanged.emit(Qt.Horizontal, 0, self.model.columnCount() - 1)
        column = self.model.column_of("model_diff")
        self.table.sortByColumn(column, Qt.DescendingOrder)
        if self.proxy.rowCount():
            self.table.setCurrentIndex(self.proxy.index(0, 0))
            self.table.scrollTo(self.proxy.index(0, column))

    def select_trial(self, trial: int) -> None:
        """Make ``trial`` the current row (no signal loop: the session ignores an unchanged trial)."""
        if not self.session.has_bundle:
            return
        current = self.table.currentIndex()
        if current.isValid() and current.data(TRIAL_ROLE) == trial:
            return
        index = self.proxy.mapFromSource(self.model.index(trial, 0))
        if index.isValid():
            self.table.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows)
            self.table.scrollTo(index)

    def current_trial(self) -> int | None:
        """The trial index of the current row."""
        index = self.table.currentIndex()
        return int(index.data(TRIAL_ROLE)) if index.isValid() else None

    def _current_changed(self, current, previous) -> None:
        if current.isValid():
            self.trial_selected.emit(int(current.data(TRIAL_ROLE)))

    def _keep_current_visible(self, *args) -> None:
        current = self.table.currentIndex()
        if current.isValid():
            self.table.scrollTo(current)
