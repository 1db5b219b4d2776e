"""The language panel's views: top-match thumbnails, the rank plot of a search, the zero-shot confusion
image and the concept map's ROI bars. Each shows one core result and holds no state of its own."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal

from brainview.qt.thumbnails import QtThumbnail
from brainview.qt.trial_view import PLOT_BACKGROUND, PLOT_FOREGROUND, TRIAL_COLOUR

BRAIN_COLOUR = TRIAL_COLOUR
IMAGE_COLOUR = "#3ddc84"
NEGATIVE_COLOUR = "#d05050"
WARNING_COLOUR = "#f0a030"


def warning_html(text: str | None) -> str:
    """A vocabulary (or other) warning as one HTML line, empty without one."""
    return f"<br><span style='color:{WARNING_COLOUR}'>⚠ {text}</span>" if text else ""


class QtMatchThumbnail(QtThumbnail):
    """A top match: its stimulus, rank and brain score; a click goes to the trial."""

    clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.trial: int | None = None
        self.setCursor(Qt.PointingHandCursor)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self.trial is not None and event.button() == Qt.LeftButton:
            self.clicked.emit(self.trial)
        super().mousePressEvent(event)


class QtLanguagePlot(pg.PlotWidget):
    """A static pyqtgraph plot in the app's colours (no mouse, no menu)."""

    def __init__(self, title_left: str = "", title_bottom: str = "", parent=None):
        super().__init__(parent, enableMenu=False, background=PLOT_BACKGROUND)
        self.plotItem.ctrlMenu.setParent(self, self.plotItem.ctrlMenu.windowFlags())  # no parentless menus
        for side in ("left", "bottom"):
            axis = self.getAxis(side)
            axis.setPen(PLOT_FOREGROUND)
            axis.setTextPen(PLOT_FOREGROUND)
            axis.enableAutoSIPrefix(False)
        if title_left:
            self.setLabel("left", title_left)
        if title_bottom:
            self.setLabel("bottom", title_bottom)
        self.setMouseEnabled(False, False)
        self.setMinimumHeight(190)


class QtRankPlot(QtLanguagePlot):
    """A search's brain scores in rank order, with the true-image scores of the same trials as dots."""

    def __init__(self, parent=None):
        super().__init__("score", "trials, best brain match first", parent)

    def show_result(self, result) -> None:
        self.clear()
        if result is None:
            return
        order = result.order
        ranks = np.arange(1, order.size + 1)
        if self.plotItem.legend is None:
            self.addLegend(offset=(-10, 10), labelTextSize="8pt")
        self.plot(ranks, result.brain[order], pen=pg.mkPen(BRAIN_COLOUR, width=2), name="brain")
        self.plot(ranks, result.image[order], pen=None, symbol="o", symbolSize=4, symbolPen=None,
                  symbolBrush=IMAGE_COLOUR, name="true image tokens")


class QtConfusionPlot(QtLanguagePlot):
    """A row-normalized confusion matrix (rows truth, columns top-1) with the counts written in."""

    def __init__(self, parent=None):
        super().__init__("truth", "top-1 prediction (brain)", parent)
        self.invertY(True)
        self.setAspectLocked(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.addItem(self.image)
        self._texts: list[pg.TextItem] = []

    def show_confusion(self, names: list[str] | None, confusion: np.ndarray | None) -> None:
        for item in self._texts:
            self.removeItem(item)
        self._texts = []
        if confusion is None:
            self.image.clear()
            return
        fraction = confusion.astype(np.float64) / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
        self.image.setImage(fraction, levels=(0, 1))
        ticks = [(i + 0.5, name) for i, name in enumerate(names)]
        self.getAxis("bottom").setTicks([ticks])
        self.getAxis("left").setTicks([ticks])
        for (row, column), count in np.ndenumerate(confusion):
            if count:
                text = pg.TextItem(str(count), color="w" if fraction[row, column] < 0.6 else "k", anchor=(0.5, 0.5))
                text.setPos(column + 0.5, row + 0.5)
                self.addItem(text)
                self._texts.append(text)
        self.setRange(xRange=(0, len(names)), yRange=(0, len(names)), padding=0)


class QtRoiBars(QtLanguagePlot):
    """A concept map's mean per ROI, best first; negative means in red."""

    def __init__(self, parent=None):
        super().__init__("map mean", "", parent)
        self.setFixedHeight(210)  # the ROI names under the bars stay in view above the lesion text

    def show_means(self, rois: dict[str, float] | None) -> None:
        self.clear()
        if not rois:
            return
        names, values = list(rois), np.array(list(rois.values()))
        brushes = [pg.mkBrush(BRAIN_COLOUR if v >= 0 else NEGATIVE_COLOUR) for v in values]
        self.addItem(pg.BarGraphItem(x=np.arange(len(names)), height=values, width=0.7, brushes=brushes))
        self.getAxis("bottom").setTicks([[(i, name.replace("floc-", "")) for i, name in enumerate(names)]])
