"""The retrieved-caption lists of the trial view (the trial's and the synthetic pattern's): each row the
caption's score, the test trial it belongs to and, for the pattern's own trial's references, a mark; the
selected rows go to the clipboard with Ctrl+C or the context menu's "Copy" / "Copy with trial ids".

The rows and their text come from :func:`brainview.analysis.tables.retrieved_captions` (the same rows the
retrieval CSV writes); this widget only shows them and copies them.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QApplication, QListWidget, QListWidgetItem

from brainview.analysis.tables import RetrievedCaption, copied_captions
from brainview.qt.thumbnails import TRUE_COLOUR

ROW_ROLE = Qt.UserRole  # the RetrievedCaption a row shows (none on a message row)


class QtRetrievedCaptions(QListWidget):
    """Top-k retrieved captions with their trial ids; Ctrl+C and the context menu copy the selected rows."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setMinimumHeight(120)
        self.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.copy_action = QAction("Copy", self, shortcut=QKeySequence.Copy,
                                   shortcutContext=Qt.WidgetShortcut,
                                   toolTip="The selected rows as shown: score, trial id, caption, true mark")
        self.copy_action.triggered.connect(lambda: self.copy(trial_ids=False))
        self.copy_ids_action = QAction("Copy with trial ids", self,
                                       toolTip="Tab-separated rank, trial id, score, caption and true, with a header")
        self.copy_ids_action.triggered.connect(lambda: self.copy(trial_ids=True))
        separator = QAction(self)
        separator.setSeparator(True)
        self.setContextMenuPolicy(Qt.ActionsContextMenu)  # the window's exports add theirs after these
        self.addActions([self.copy_action, self.copy_ids_action, separator])
        self.itemSelectionChanged.connect(self._enable_copy)
        self._enable_copy()

    def show_rows(self, rows: list[RetrievedCaption]) -> None:
        self.clear()
        for row in rows:
            item = QListWidgetItem(row.line())
            item.setData(ROW_ROLE, row)
            item.setToolTip(f"#{row.rank}, a reference caption of trial {row.trial_id}"
                            + (" (this pattern's own trial: a true caption)" if row.is_true else ""))
            if row.is_true:
                item.setForeground(QColor(TRUE_COLOUR))
            self.addItem(item)

    def show_message(self, text: str) -> None:
        self.clear()
        item = QListWidgetItem(text)
        item.setFlags(Qt.NoItemFlags)  # a message is not a row to select or copy
        self.addItem(item)

    def selected_rows(self) -> list[RetrievedCaption]:
        """The selected rows in list order."""
        items = sorted(self.selectedItems(), key=self.row)
        return [row for row in (item.data(ROW_ROLE) for item in items) if row is not None]

    def copy(self, trial_ids: bool = False) -> str:
        """Put the selected rows on the clipboard as plain text (nothing when none is selected)."""
        rows = self.selected_rows()
        if not rows:
            return ""
        text = copied_captions(rows, trial_ids)
        QApplication.clipboard().setText(text)
        return text

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        # the view's own Copy would put only the current row's text there: every selected row instead
        if event.matches(QKeySequence.Copy):
            self.copy()
            event.accept()
            return
        super().keyPressEvent(event)

    def _enable_copy(self) -> None:
        on = bool(self.selected_rows())
        self.copy_action.setEnabled(on)
        self.copy_ids_action.setEnabled(on)
