"""The cortex's overlay list (Qt-free), as napari's layer list or FSLeyes' overlay list: the trial's
pattern, the selection's synthetic pattern, the concept map, the selection fill and the ROI outlines,
each with its own visibility, colour map, threshold, range and opacity, so that a threshold chosen for
one pattern never blanks another (a threshold of 1.0 for the fMRI pattern hid a concept map of ±0.71).

One data layer (a pattern or the map) colours the surface at a time, the one "Cortex shows"; the
selection fill and the outlines are drawn over it. Saved in session files as :meth:`OverlayLayers.to_dict`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from brainview.errors import UserError

DATA_LAYERS = ("trial", "synthetic", "concept")
LAYERS = (*DATA_LAYERS, "selection", "outlines")
LAYER_LABELS = {"trial": "trial fMRI pattern", "synthetic": "synthetic pattern", "concept": "concept map",
                "selection": "selection", "outlines": "ROI outlines"}


@dataclass(frozen=True)
class LayerStyle:
    """How one layer is drawn. ``threshold``: values whose magnitude (or value, when not symmetric) is
    below it stay uncoloured; ``vmin``/``vmax`` None: the data's own range; colour settings are unused by
    the selection and the outlines."""

    visible: bool = True
    cmap: str = "RdBu_r"
    threshold: float | None = None
    vmin: float | None = None
    vmax: float | None = None
    symmetric: bool = True
    opacity: float = 1.0

    def checked(self) -> LayerStyle:
        """This style, or ``UserError`` naming what is out of range."""
        from matplotlib import colormaps

        if self.cmap not in colormaps:
            raise UserError(f"unknown colour map {self.cmap!r}")
        if not 0.0 <= self.opacity <= 1.0:
            raise UserError(f"opacity must lie in 0..1, got {self.opacity}")
        for name in ("threshold", "vmin", "vmax"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise UserError(f"{name} must be a finite number, got {value}")
        if self.threshold is not None and self.threshold < 0:
            raise UserError(f"threshold must be at least 0, got {self.threshold}")
        return self


#: the selection is a translucent fill; the rest are opaque
DEFAULTS = {name: LayerStyle(opacity=0.6 if name == "selection" else 1.0) for name in LAYERS}
STYLE_FIELDS = tuple(f.name for f in fields(LayerStyle))


class OverlayLayers:
    """Every layer's style; :meth:`update` changes one layer and leaves the others as they are."""

    def __init__(self):
        self.styles: dict[str, LayerStyle] = dict(DEFAULTS)

    def style(self, layer: str) -> LayerStyle:
        return self.styles[self._known(layer)]

    def update(self, layer: str, **changes) -> LayerStyle:
        """Change some of a layer's settings (``UserError`` for an unknown layer, setting or value)."""
        unknown = set(changes) - set(STYLE_FIELDS)
        if unknown:
            raise UserError(f"unknown overlay setting {sorted(unknown)[0]!r}; settings are {', '.join(STYLE_FIELDS)}")
        style = replace(self.style(layer), **changes).checked()
        self.styles[layer] = style
        return style

    def to_dict(self) -> dict[str, dict]:
        return {name: asdict(style) for name, style in self.styles.items()}

    def restore(self, saved: dict) -> None:
        """Put back styles saved by :meth:`to_dict`; layers and settings it lacks keep their defaults."""
        if not isinstance(saved, dict):
            raise UserError("the overlay settings must be a mapping of layer to settings")
        styles = dict(DEFAULTS)
        for name, values in saved.items():
            if name in LAYERS and isinstance(values, dict):
                known = {key: value for key, value in values.items() if key in STYLE_FIELDS}
                styles[name] = replace(DEFAULTS[name], **known).checked()
        self.styles = styles

    @staticmethod
    def _known(layer: str) -> str:
        if layer not in LAYERS:
            raise UserError(f"unknown overlay {layer!r}; overlays are {', '.join(LAYERS)}")
        return layer
