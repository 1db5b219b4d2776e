"""The app's pyqtgraph plots share :class:`QtPlot`: its colours, no context menu, a title that is elided
to the plot's width (the full text in its tooltip), and an empty state: with nothing to plot, no axes
and no grid, only a short centred text that says why (never 0…1 axes with ticks that mean nothing)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics, QTextOption

PLOT_BACKGROUND = "#1f2228"
PLOT_FOREGROUND = "#c9ccd1"
TITLE_POINTS = 9
AXES = ("left", "bottom")


class QtPlot(pg.PlotWidget):
    """A pyqtgraph plot in the app's colours. Draw data after :meth:`begin_data`; :meth:`show_empty` says
    why there is none instead."""

    def __init__(self, left: str = "", bottom: str = "", grid: bool = False, mouse: bool = True, parent=None):
        super().__init__(parent, enableMenu=False, background=PLOT_BACKGROUND)
        # no parentless menus: pyqtgraph's would outlive the window
        self.plotItem.ctrlMenu.setParent(self, self.plotItem.ctrlMenu.windowFlags())
        for side in AXES:
            axis = self.getAxis(side)
            axis.setPen(PLOT_FOREGROUND)
            axis.setTextPen(PLOT_FOREGROUND)
            axis.enableAutoSIPrefix(False)  # cosines and scores read as they are, not ×0.001
        if left:
            self.setLabel("left", left)
        if bottom:
            self.setLabel("bottom", bottom)
        self._grid, self._mouse = grid, mouse
        self.setMouseEnabled(mouse, mouse)
        self.full_title = ""
        self.empty_reason: str | None = None
        self.reason_label = pg.TextItem(color=PLOT_FOREGROUND, anchor=(0.5, 0.5))
        self.reason_label.textItem.document().setDefaultTextOption(QTextOption(Qt.AlignCenter))
        self.show_empty("no data")

    # ----------------------------------------------------------------- empty or not

    def show_empty(self, reason: str) -> None:
        """No data: no axes, grid, title or legend; ``reason`` in the middle."""
        self.clear()
        self.empty_reason = reason
        for side in AXES:
            self.hideAxis(side)
        self.showGrid(x=False, y=False)
        self.set_title("")
        if self.plotItem.legend is not None:
            self.plotItem.legend.hide()
        self.setMouseEnabled(False, False)
        self.reason_label.setText(reason)
        self.addItem(self.reason_label, ignoreBounds=True)
        self.reason_label.setPos(0.5, 0.5)
        self.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
        self._fit_texts()

    def begin_data(self) -> None:
        """Clear the plot for new data: the axes, grid and legend back, the range following the data."""
        self.clear()
        self.empty_reason = None
        for side in AXES:
            self.showAxis(side)
        self.showGrid(x=False, y=self._grid, alpha=0.15)
        if self.plotItem.legend is not None:
            self.plotItem.legend.show()
        self.setMouseEnabled(self._mouse, self._mouse)
        self.enableAutoRange()

    @property
    def is_empty(self) -> bool:
        return self.empty_reason is not None

    # ----------------------------------------------------------------- title

    def set_title(self, text: str) -> None:
        """The title, elided to the plot's width; the full text in the tooltip when it is cut."""
        self.full_title = text
        self._fit_texts()

    def _fit_texts(self) -> None:
        font = QFont(self.font())
        font.setPointSize(TITLE_POINTS)
        room = max(40, self.width() - 24)
        shown = QFontMetrics(font).elidedText(self.full_title, Qt.ElideRight, room)
        if shown:
            self.setTitle(shown, size=f"{TITLE_POINTS}pt")
        else:
            self.setTitle(None)
        self.setToolTip(self.full_title if shown != self.full_title else "")
        self.reason_label.setTextWidth(room)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if "reason_label" in self.__dict__:  # not while pyqtgraph's constructor lays the plot out
            self._fit_texts()
