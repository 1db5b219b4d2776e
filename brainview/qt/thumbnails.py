"""Retrieved images as thumbnails: a row of the top-k test images, each with its rank and score and the
true image framed, scaled once per bundle and image (live decoding shows the same images again and
again)."""

from __future__ import annotations

import weakref
from collections import OrderedDict

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from brainview.decoding.decoder import Decoded
from brainview.state.session import Session

TRUE_COLOUR = "#3ddc84"
THUMB = 76


def pixmap_from_array(image: np.ndarray, size: int) -> QPixmap:
    """An RGB uint8 (H, W, 3) array as a square-fitted pixmap."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    h, w, _ = image.shape
    qimage = QImage(image.data, w, h, 3 * w, QImage.Format_RGB888).copy()
    return QPixmap.fromImage(qimage).scaled(size, size, Qt.KeepAspectRatio, Qt.SmoothTransformation)


#: scaled thumbnails per bundle, newest last: live decoding shows the same top images again and again, and
#: scaling a full-size stimulus costs milliseconds each on the GUI thread
_THUMBNAILS: dict[int, tuple[weakref.ref, OrderedDict]] = {}  # id(bundle) -> (the bundle, its pixmaps)
_THUMBNAILS_KEPT = 256


def stimulus_thumbnail(session: Session, index: int, size: int = 0) -> QPixmap:
    """Test image ``index`` of the session's bundle as a ``size`` (default: thumbnail) pixmap, scaled once."""
    size = size or THUMB
    bundle = session.bundle
    entry = _THUMBNAILS.get(id(bundle))
    if entry is None or entry[0]() is not bundle:
        for key in [k for k, (ref, _) in _THUMBNAILS.items() if ref() is None]:  # bundles gone
            del _THUMBNAILS[key]
        entry = _THUMBNAILS[id(bundle)] = (weakref.ref(bundle), OrderedDict())
    kept = entry[1]
    key = (int(index), size)
    if key in kept:
        kept.move_to_end(key)
        return kept[key]
    pixmap = kept[key] = pixmap_from_array(session.stimulus(int(index)), size)
    if len(kept) > _THUMBNAILS_KEPT:
        kept.popitem(last=False)
    return pixmap


class QtThumbnail(QWidget):
    """A retrieved image with its rank and score; the true image gets a coloured frame."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.image = QLabel(alignment=Qt.AlignCenter)
        self.image.setFixedSize(THUMB + 8, THUMB + 8)
        self.text = QLabel(alignment=Qt.AlignCenter)
        self.text.setObjectName("muted")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.image)
        layout.addWidget(self.text)
        self.is_true = False

    def show_candidate(self, pixmap: QPixmap, rank: int, score: float, is_true: bool, tooltip: str) -> None:
        if is_true != self.is_true or not self.image.styleSheet():  # restyling costs a style pass: only on change
            frame = TRUE_COLOUR if is_true else "transparent"
            self.image.setStyleSheet(f"border: 3px solid {frame}; border-radius: 3px;")
        self.is_true = is_true
        self.image.setPixmap(pixmap)
        self.text.setText(f"#{rank}  {score:.3f}" + ("  ✓" if is_true else ""))
        self.setToolTip(tooltip)


class QtRetrievalRow(QScrollArea):
    """k thumbnails in a row (scrolling sideways when k is large), or a placeholder message."""

    def __init__(self, parent=None):
        super().__init__(parent, widgetResizable=True, frameShape=QFrame.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setFixedHeight(THUMB + 8 + 24 + 12)
        strip = QWidget()
        self.layout_ = QHBoxLayout(strip)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.layout_.setSpacing(6)
        self.message = QLabel()
        self.message.setObjectName("muted")
        self.layout_.addWidget(self.message)
        self.layout_.addStretch(1)
        self.setWidget(strip)
        self.thumbnails: list[QtThumbnail] = []

    def show_message(self, text: str) -> None:
        self._resize(0)
        self.message.setText(text)
        self.message.show()

    def _resize(self, k: int) -> None:
        while len(self.thumbnails) > k:
            self.thumbnails.pop().deleteLater()
        while len(self.thumbnails) < k:
            thumb = QtThumbnail(self.widget())
            self.layout_.insertWidget(len(self.thumbnails), thumb)
            self.thumbnails.append(thumb)

    def show_images(self, session: Session, decoded: Decoded, true_trial: int | None) -> None:
        self.message.hide()
        indices, scores = decoded.images.indices, decoded.images.scores
        self._resize(len(indices))
        for rank, (thumb, index, score) in enumerate(zip(self.thumbnails, indices, scores), start=1):
            index = int(index)
            tooltip = f"trial {session.trial_id(index)}\n{session.references(index)[0]}"
            thumb.show_candidate(stimulus_thumbnail(session, index), rank, float(score), index == true_trial, tooltip)
