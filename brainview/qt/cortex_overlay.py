"""The overlay's colours in the cortex view: colour range, threshold, the colormap's table and the colour bar."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonCore import VTK_UNSIGNED_CHAR, vtkLookupTable
from vtkmodules.vtkRenderingAnnotation import vtkScalarBarActor

BAND_GREY = 128  # the colour bar's band of values the threshold leaves uncoloured


def color_range(values: np.ndarray | None, style: dict) -> tuple[float, float, np.ndarray]:
    """(vmin, vmax, RGBA uint8 table of 256 colours) for ``values`` drawn in ``style``.

    Symmetric: ±``vmax`` (automatic: the largest magnitude); otherwise ``vmin``..``vmax``
    (automatic: the data range)."""
    table = (colormaps[style["cmap"]](np.linspace(0, 1, 256)) * 255).round().astype(np.uint8)
    finite = values[np.isfinite(values)] if values is not None else np.zeros(0)
    if style["symmetric"]:
        top = style["vmax"] or (float(np.abs(finite).max()) if finite.size else 1.0)
        vmin, vmax = -top, top
    else:
        vmin = style["vmin"] if style["vmin"] is not None else (float(finite.min()) if finite.size else 0.0)
        vmax = style["vmax"] if style["vmax"] is not None else (float(finite.max()) if finite.size else 1.0)
    if not vmax > vmin:
        vmax = vmin + 1.0
    return vmin, vmax, table


def visible(values: np.ndarray, style: dict) -> np.ndarray:
    """Which ``values`` are coloured: finite and (magnitude, when symmetric) at least the threshold."""
    threshold = style["threshold"]
    shown = np.isfinite(values)
    if threshold:
        with np.errstate(invalid="ignore"):
            shown &= (np.abs(values) if style["symmetric"] else values) >= threshold
    return shown


def lookup_table(table: np.ndarray, vmin: float, vmax: float, style: dict | None = None) -> vtkLookupTable:
    """The colormap's table over vmin..vmax, for the colour bar; with a ``style`` that has a threshold, the
    band of values left uncoloured is drawn grey, as on the surface."""
    if style is not None and style.get("threshold"):
        centres = vmin + (np.arange(256) + 0.5) / 256 * (vmax - vmin)
        hidden = ~visible(centres, style)
        table = table.copy()
        table[hidden, :3] = BAND_GREY
    lut = vtkLookupTable()
    lut.SetNumberOfTableValues(256)
    lut.SetTable(numpy_to_vtk(table, deep=True, array_type=VTK_UNSIGNED_CHAR))
    lut.SetRange(vmin, vmax)
    return lut


def bar_title(label: str, style: dict) -> str:
    """The colour bar's title: which overlay it shows, and its threshold."""
    threshold = style.get("threshold")
    if not threshold:
        return label
    return f"{label} · {'|value|' if style['symmetric'] else 'value'} ≥ {threshold:.3g}"


def make_scalar_bar() -> vtkScalarBarActor:
    """A horizontal colour bar with five labels, hidden until there is an overlay."""
    bar = vtkScalarBarActor()
    bar.SetOrientationToHorizontal()
    bar.SetPosition(0.3, 0.05)
    bar.SetWidth(0.4)
    bar.SetHeight(0.9)
    bar.SetNumberOfLabels(5)
    bar.SetTextPositionToPrecedeScalarBar()  # labels under the bar, the title (overlay, threshold) above it
    bar.SetLabelFormat("%.3g")
    bar.UnconstrainedFontSizeOn()
    for text in (bar.GetLabelTextProperty(), bar.GetTitleTextProperty()):  # plain light text for both
        text.SetFontSize(12)
        text.SetColor(0.95, 0.95, 0.95)
        text.ShadowOff()
        text.ItalicOff()
        text.BoldOff()
    bar.SetVerticalTitleSeparation(2)
    bar.SetVisibility(False)
    return bar
