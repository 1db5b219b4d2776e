"""The language panel's views: top-match thumbnails, the rank plot of a search, the zero-shot confusion
image and the concept map's ROI bars. Each shows one core result and holds no state of its own."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal

from brainview.qt.plots import PLOT_FOREGROUND, QtPlot
from brainview.qt.thumbnails import QtThumbnail
from brainview.qt.trial_view import TRIAL_COLOUR

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


class QtLanguagePlot(QtPlot):
    """A static plot of the language panel (no mouse), empty until its query has run."""

    def __init__(self, title_left: str = "", title_bottom: str = "", empty: str = "", parent=None):
        super().__init__(title_left, title_bottom, mouse=False, parent=parent)
        self.setMinimumHeight(190)
        self.empty_text = empty
        self.show_empty(empty)


class QtRankPlot(QtLanguagePlot):
    """A search's brain scores in rank order, with the true-image scores of the same trials as dots."""

    def __init__(self, parent=None):
        super().__init__("score", "trials, best brain match first", "no search yet: type a phrase above", parent)

    def show_result(self, result, why: str | None = None) -> None:
        """``result`` (a phrase search), or ``why`` there is none (default: no search yet)."""
        if result is None:
            self.show_empty(why or self.empty_text)
            return
        self.begin_data()
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
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        super().__init__("truth", "top-1 prediction (brain)", "no labels classified yet", parent)
        self.invertY(True)
        self.setAspectLocked(False)
        self._texts: list[pg.TextItem] = []

    def show_confusion(self, names: list[str] | None, confusion: np.ndarray | None, why: str | None = None) -> None:
        """The confusion matrix, or ``why`` there is none (default: no labels classified yet)."""
        self._texts = []
        if confusion is None:
            self.image.clear()
            self.show_empty(why or self.empty_text)
            return
        self.begin_data()
        self.addItem(self.image)
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
    """A concept map's mean per ROI, best first: each bar from 0 to its value (down for a negative mean, in
    red), the range set from the values on every draw (0 included, the same padding above and below)."""

    BAR_WIDTH = 0.7
    PADDING = 0.08  # of the values' span (0 included), above and below

    def __init__(self, parent=None):
        super().__init__("map mean", "", "no concept map yet: type a phrase and press Map", parent)
        self.setFixedHeight(210)  # the ROI names under the bars stay in view above the lesion text
        self.bars: pg.BarGraphItem | None = None

    def show_means(self, rois: dict[str, float] | None, why: str | None = None) -> None:
        """The map's mean per ROI, or ``why`` there is none (default: no concept map yet)."""
        self.bars = None
        if not rois:
            self.show_empty(why or self.empty_text)
            return
        self.begin_data()
        names, values = list(rois), np.array(list(rois.values()), dtype=np.float64)
        brushes = [pg.mkBrush(BRAIN_COLOUR if v >= 0 else NEGATIVE_COLOUR) for v in values]
        self.bars = pg.BarGraphItem(x=np.arange(len(names)), y0=np.minimum(values, 0), height=np.abs(values),
                                    width=self.BAR_WIDTH, brushes=brushes)
        self.addItem(self.bars)
        self.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen(PLOT_FOREGROUND, width=1)))
        self.getAxis("bottom").setTicks([[(i, name.replace("floc-", "")) for i, name in enumerate(names)]])
        low, high = min(0.0, float(values.min())), max(0.0, float(values.max()))
        pad = self.PADDING * (high - low) if high > low else 1.0
        # room at both ends for the first and last ROI's names, wider than their bars
        self.setRange(xRange=(-0.75, len(names) - 0.25), yRange=(low - pad, high + pad), padding=0)
