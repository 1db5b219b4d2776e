"""Render the PNG icon sizes from packaging/linux/icons/brainview.svg (run after editing the SVG):
``QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/render_icons.py``."""

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

SIZES = (16, 32, 48, 64, 128, 256, 512)
ICONS = Path(__file__).resolve().parent / "linux" / "icons"

if __name__ == "__main__":
    app = QGuiApplication([])
    renderer = QSvgRenderer(str(ICONS / "brainview.svg"))
    for size in SIZES:
        image = QImage(size, size, QImage.Format_ARGB32)
        image.fill(Qt.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.Antialiasing)
        renderer.render(painter)
        painter.end()
        folder = ICONS / f"{size}x{size}"
        folder.mkdir(exist_ok=True)
        if not image.save(str(folder / "brainview.png")):
            raise SystemExit(f"could not write {folder / 'brainview.png'}")
