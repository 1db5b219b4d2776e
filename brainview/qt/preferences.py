"""Preferences that outlive the window (QSettings): geometry and splitter positions, the last device,
the overlay colormap and the brush radius. Recent bundles are kept by the main window in the same
settings. Restored when the window is built, saved when it closes."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QObject
from PySide6.QtWidgets import QSplitter

from brainview.qt.cortex_controls import COLORMAPS
from brainview.state.session import DEVICES


class QtPreferences(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.settings = window.settings

    def _splitters(self) -> dict[str, QSplitter]:
        return {s.objectName(): s for s in self.window.findChildren(QSplitter) if s.objectName()}

    def restore(self) -> None:
        """Geometry, device-independent settings; the splitters wait for :meth:`restore_splitters`."""
        window, settings = self.window, self.settings
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            window.restoreGeometry(geometry)
        view = window.cortex_view
        if view is not None:
            cmap = settings.value("cortex/colormap")
            if isinstance(cmap, str) and cmap in COLORMAPS:
                view.update_overlay_style(cmap=cmap)
            try:
                radius = float(settings.value("cortex/brush_radius", view.brush_radius))
            except (TypeError, ValueError):
                radius = view.brush_radius
            view.set_brush_radius(min(max(radius, 0.5), 50.0))

    def restore_splitters(self) -> None:
        """Splitter positions, once the window is shown at its size (before, the layout redistributes them)."""
        for name, splitter in self._splitters().items():
            state = self.settings.value(f"window/splitter/{name}")
            if isinstance(state, QByteArray):
                splitter.restoreState(state)

    @staticmethod
    def last_device(settings, default: str = "auto") -> str:
        device = settings.value("device", default)
        return device if device in DEVICES else default

    def save(self) -> None:
        window, settings = self.window, self.settings
        settings.setValue("window/geometry", window.saveGeometry())
        for name, splitter in self._splitters().items():
            settings.setValue(f"window/splitter/{name}", splitter.saveState())
        settings.setValue("device", window.device)
        if window.cortex_view is not None:
            settings.setValue("cortex/colormap", window.cortex_view.overlay_style["cmap"])
            settings.setValue("cortex/brush_radius", window.cortex_view.brush_radius)
        settings.sync()
