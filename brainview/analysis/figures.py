"""Publication figures, Qt-free: what a cortex overlay shows, the figure around a rendered cortex (colour
bar, ROI legend, title) and the trial panel (stimulus, references, captions, retrievals).

The cortex itself is rendered by VTK in ``brainview.qt.figure_export`` at the size the figure needs;
this module places it with matplotlib, which writes PNG, SVG and PDF at an exact pixel size
(``width / DPI`` inches at ``DPI``). Overlays are looked up by kind in a registry, so a new kind (a
concept map, ``concept:PHRASE``) is one :func:`register_overlay` call.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainview.bundle.user_files import check_output_path
from brainview.errors import UserError

DPI = 100
FORMATS = (".png", ".svg", ".pdf")
#: share of the figure's height the cortex takes; the rest holds the title, colour bar and legend
CORTEX_SHARE = 0.8
TITLE_SHARE = 0.06
MIN_SIDE, MAX_SIDE = 64, 16384
#: memory a figure takes to render per pixel, measured: 6.2 GB for a 16384 × 16384 cortex figure
#: (VTK's colour and depth buffers, the RGBA copy, matplotlib's canvas and the PNG encoder)
BYTES_PER_PIXEL = 24
#: the most memory a figure may take to render: about 134 megapixels (11,585 px square), above a
#: 300-dpi A0 poster's cortex
MAX_FIGURE_BYTES = 3 * 2**30


@dataclass
class Overlay:
    """Per-vertex values to colour the cortex with (NaN: uncoloured) and what they are."""

    values: np.ndarray
    label: str
    symmetric: bool = True


OverlayMaker = Callable[..., Overlay]  # (session, argument or None) -> Overlay
_OVERLAYS: dict[str, tuple[OverlayMaker, str]] = {}


def register_overlay(kind: str, maker: OverlayMaker, help_text: str) -> None:
    """Make ``--overlay KIND`` (or ``KIND:ARGUMENT``) available; ``maker(session, argument)`` builds it."""
    _OVERLAYS[kind] = (maker, help_text)


def overlay_kinds() -> dict[str, str]:
    """Each overlay kind with a one-line description."""
    return {kind: help_text for kind, (_, help_text) in _OVERLAYS.items()}


def make_overlay(session, spec: str) -> Overlay:
    """The overlay ``spec`` names (``trial``, ``synthetic``, or ``KIND:ARGUMENT``) for the session's state."""
    kind, _, argument = spec.partition(":")
    if kind not in _OVERLAYS:
        raise UserError(f"unknown overlay {spec!r}; choose from {', '.join(_OVERLAYS)}")
    return _OVERLAYS[kind][0](session, argument or None)


def trial_overlay(session, argument: str | None = None) -> Overlay:
    """The current trial's fMRI pattern."""
    return Overlay(session.vertex_values(session.pattern()), f"fMRI pattern, trial {session.trial_id()}")


def synthetic_overlay(session, argument: str | None = None) -> Overlay:
    """The selection's synthetic pattern; the paper's ROI-only pattern is uncoloured outside the ROI."""
    voxels = session.selection.voxels()
    if voxels.size == 0:
        raise UserError("the synthetic overlay needs a selection: name ROIs with --rois or paint some")
    settings = session.synthetic
    values = session.vertex_values(session.synthetic_pattern(voxels))
    if settings.mode == "roi":
        values[values == 0] = np.nan
        label = f"synthetic ROI pattern (scale {settings.scale:.3g})"
    else:
        label = f"{settings.mode} of trial {session.trial_id()} ({len(voxels)} voxels)"
    return Overlay(values, label)


def concept_overlay(session, argument: str | None = None) -> Overlay:
    """A phrase's trial-independent concept map: ``concept:PHRASE`` computes it (loading the text
    encoder), a bare ``concept`` is the map the language panel shows."""
    if argument:
        from brainview.decoding.language import unavailable_reason

        reason = unavailable_reason(session.bundle)
        if reason:
            raise UserError(f"no concept map: {reason}")
        concept = session.language.prepare(session.bundle).concept_map(argument)
    elif session.language.concept is not None:
        concept = session.language.concept.concept
    else:
        raise UserError("no concept map is shown; name a phrase: --overlay concept:PHRASE")
    return Overlay(session.vertex_values(concept.values), f'concept map of "{concept.phrase}" ({concept.kind})')


register_overlay("trial", trial_overlay, "the trial's fMRI pattern")
register_overlay("synthetic", synthetic_overlay, "the selection's synthetic pattern")
register_overlay("concept", concept_overlay, "a phrase's concept map (concept:PHRASE)")


@dataclass
class ColorBar:
    cmap: str
    vmin: float
    vmax: float
    label: str

    @property
    def ticks(self) -> list[float]:
        """The range's ends (and zero when it spans zero), the numbers a reader needs."""
        ticks = [self.vmin, self.vmax]
        if self.vmin < 0 < self.vmax:
            ticks.insert(1, 0.0)
        return ticks


def figure_size(width: int | None, height: int | None, scale: float | None,
                base: tuple[int, int]) -> tuple[int, int]:
    """Pixel size from ``--width/--height`` (both) or ``--scale`` times ``base``; ``base`` when neither."""
    if (width is None) != (height is None):
        raise UserError("give both --width and --height, or --scale")
    if width is not None and scale is not None:
        raise UserError("give --width/--height or --scale, not both")
    if scale is not None:
        if not 0 < scale <= 16:
            raise UserError("--scale must lie in (0, 16]")
        width, height = round(base[0] * scale), round(base[1] * scale)
    width, height = (width, height) if width is not None else base
    check_figure_size(width, height)
    return int(width), int(height)


def figure_memory(width: int, height: int) -> int:
    """Bytes a ``width`` × ``height`` figure takes while it is rendered (:data:`BYTES_PER_PIXEL`)."""
    return int(width) * int(height) * BYTES_PER_PIXEL


def check_figure_size(width: int, height: int) -> None:
    """Refuse a size outside :data:`MIN_SIDE`..:data:`MAX_SIDE` per side, or one whose rendering would
    take more than :data:`MAX_FIGURE_BYTES`, saying the estimate and the limit."""
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise UserError(f"figure size {width}x{height} is outside {MIN_SIDE}..{MAX_SIDE} pixels per side")
    need = figure_memory(width, height)
    if need > MAX_FIGURE_BYTES:
        raise UserError(f"a {width}x{height} figure needs about {need / 2**30:.1f} GiB of memory to render, more "
                        f"than the {MAX_FIGURE_BYTES / 2**30:.0f} GiB limit (about "
                        f"{MAX_FIGURE_BYTES // BYTES_PER_PIXEL / 1e6:.0f} megapixels): choose a smaller size")


def check_output(path: str | Path) -> Path:
    """The figure's path, checked before anything is rendered: a known format, and a place a file can
    be written (:func:`~brainview.bundle.user_files.check_output_path`)."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in FORMATS:
        raise UserError(f"the figure must be {', '.join(FORMATS)}, got {path.name}")
    return check_output_path(path)


def _save(fig, out: Path, transparent: bool) -> Path:
    """Write ``fig`` to ``out`` atomically (a temporary file beside it, then one rename)."""
    import matplotlib

    fd, temp = tempfile.mkstemp(prefix=f".{out.name[:100]}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle, matplotlib.rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):
            fig.savefig(handle, format=out.suffix.lower()[1:], dpi=DPI, transparent=transparent)
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, out)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cortex_area(width: int, height: int) -> tuple[int, int]:
    """Pixel size the cortex is rendered at inside a ``width`` × ``height`` figure."""
    return width, max(1, int(round(height * CORTEX_SHARE)))


def save_cortex_figure(out: str | Path, image: np.ndarray, width: int, height: int, *, title: str = "",
                       colorbar: ColorBar | None = None, legend: dict[str, tuple[int, int, int]] | None = None,
                       transparent: bool = False) -> Path:
    """Write the figure: ``image`` (RGBA uint8 at :func:`cortex_area` size) on top, the colour bar and
    the ROI legend below. The file is exactly ``width`` × ``height`` pixels (PNG) or inches at :data:`DPI`."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    out = check_output(out)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    if not transparent:
        fig.patch.set_facecolor("white")
    else:
        fig.patch.set_alpha(0.0)
    font = max(6.0, 11.0 * min(width / 1600, height / 1000) ** 0.5 * 1.4)
    top = 1.0 - TITLE_SHARE if title else 1.0
    ax = fig.add_axes((0.0, 1.0 - CORTEX_SHARE - (1.0 - top), 1.0, CORTEX_SHARE))
    ax.imshow(image, interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    if title:
        fig.text(0.5, 1.0 - TITLE_SHARE / 2, title, ha="center", va="center", fontsize=font * 1.2,
                 parse_math=False)  # a title is plain text: "$x$" is not TeX
    bottom = 1.0 - CORTEX_SHARE - (1.0 - top)
    if colorbar is not None:
        cax = fig.add_axes((0.3, bottom * 0.55, 0.4, bottom * 0.18))
        mappable = ScalarMappable(Normalize(colorbar.vmin, colorbar.vmax), colormaps[colorbar.cmap])
        bar = fig.colorbar(mappable, cax=cax, orientation="horizontal", ticks=colorbar.ticks)
        bar.ax.set_xticklabels([_tick(t) for t in colorbar.ticks], fontsize=font)
        bar.set_label(colorbar.label, fontsize=font, parse_math=False)
    if legend:
        handles = [Patch(facecolor=np.asarray(rgb) / 255, label=name) for name, rgb in legend.items()]
        # right of the colour bar (which spans 0.3..0.7), in columns of at most three rows
        shown = fig.legend(handles=handles, loc="lower right", bbox_to_anchor=(0.995, 0.005), frameon=False,
                           fontsize=font * 0.85, ncol=max(1, math.ceil(len(handles) / 3)), title="ROI outlines",
                           title_fontsize=font * 0.85, columnspacing=0.8, handlelength=1.2)
        for text in shown.get_texts():
            text.set_parse_math(False)
    return _save(fig, out, transparent)


def _tick(value: float) -> str:
    return "0" if value == 0 else f"{value:.3g}"


def save_trial_figure(out: str | Path, session, width: int, height: int, trial: int | None = None,
                      k: int = 5, transparent: bool = False) -> Path:
    """The trial panel as a figure: stimulus, reference captions, each stage's decoded caption, and the
    top-k images and captions retrieved from the brain pattern (true ones marked), with scores."""
    from matplotlib.figure import Figure

    check_figure_size(width, height)
    out = check_output(out)
    session.predict_all()  # the true image's rank, which the window may still be filling in
    trial = session.trial if trial is None else trial
    stage = session.stage
    decoded = session.retrieve(trial=trial, stage=stage, k=k)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    if transparent:
        fig.patch.set_alpha(0.0)
    else:
        fig.patch.set_facecolor("white")
    font = max(6.0, 10.0 * min(width / 1600, height / 1000) ** 0.5 * 1.3)
    grid = fig.add_gridspec(3, k, height_ratios=(2.2, 1.0, 1.4), hspace=0.35, wspace=0.08,
                            left=0.03, right=0.97, top=0.93, bottom=0.03)
    stim = fig.add_subplot(grid[0, :2])
    stim.imshow(session.stimulus(trial))
    stim.set_axis_off()
    stim.set_title(f"trial {session.trial_id(trial)}", fontsize=font * 1.1, parse_math=False)
    text = fig.add_subplot(grid[0, 2:])
    text.set_axis_off()
    lines = ["References"] + [f"  · {r}" for r in session.references(trial)] + [""]
    for s in session.stages:
        caption = session.caption(s, trial)
        lines.append(f"Decoded, {s.replace('stage', 'stage ')}: " + (caption if caption is not None
                                                                    else f"(no caption: {session.captions_missing})"))
    text.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=font, wrap=True, parse_math=False)
    for rank, (index, score) in enumerate(zip(decoded.images.indices, decoded.images.scores)):
        ax = fig.add_subplot(grid[1, rank])
        ax.imshow(session.stimulus(int(index)))
        ax.set_xticks([])
        ax.set_yticks([])
        true = int(index) == trial
        for spine in ax.spines.values():
            spine.set_edgecolor("#2ca02c" if true else "#999999")
            spine.set_linewidth(3 if true else 0.5)
        ax.set_title(f"#{rank + 1}  {score:.3f}" + (" ✓" if true else ""), fontsize=font * 0.85)
    retrieved = fig.add_subplot(grid[2, :])
    retrieved.set_axis_off()
    image_rank = session.score("image_rank", trial, stage)
    rows = [f"Top-{len(decoded.images.indices)} images and captions retrieved from the brain pattern "
            f"({stage.replace('stage', 'stage ')}): true image ranked {image_rank:.0f} of {session.n_trials} "
            f"(chance: {(session.n_trials + 1) / 2:g} on average)"]
    if decoded.texts is not None:
        own = set(session.true_texts(trial).tolist())
        for rank, (index, score) in enumerate(zip(decoded.texts.indices, decoded.texts.scores)):
            rows.append(f"  #{rank + 1}  {score:.3f}  {decoded.caption_text(session.bundle, rank)}"
                        + ("  ✓" if int(index) in own else ""))
    retrieved.text(0.0, 1.0, "\n".join(rows), va="top", ha="left", fontsize=font, parse_math=False)
    return _save(fig, out, transparent)
