"""Session files (Qt-free): a small JSON document that names a bundle and everything the user set up
on it (trial, stage, selection, synthetic settings, surface, view, overlay, window layout), so that
``brainview open SESSION.json`` or File → Open session… puts the window back as it was.

The bundle is recorded by path and by fingerprint (the manifest's name and the sizes of the bundle's
required files); a session whose bundle moved or changed is detected by :func:`bundle_problem`, and
the app asks for the new location. Files are written atomically.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from brainview.analysis.roi_methods import REGION_MODES
from brainview.bundle import format as F
from brainview.bundle.user_files import read_user_json
from brainview.cortex import SURFACES
from brainview.cortex.roi_io import write_atomic
from brainview.decoding.synthetic import MODES
from brainview.errors import UserError
from brainview.state.overlays import LAYERS
from brainview.bundle import schema as S

STAGES = F.STAGES
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/=\s]*")

SESSION_FORMAT = "brainview-session"
SESSION_VERSION = 1
#: a session file holds a selection of up to every vertex of two 2-million-vertex hemispheres
MAX_SESSION_BYTES = 64 * 2**20
VIEW_NAMES = ("lateral", "medial", "ventral", "posterior")
SELECTION_KEYS = ("rois", "painted_voxels", "erased_voxels", "painted_vertices", "erased_vertices")


def _is_colormap(name: str) -> bool:
    from matplotlib import colormaps

    return isinstance(name, str) and name in colormaps


_POINT = S.ListOf(S.Number(-1e9, 1e9), length=3)
_DIRECTION = S.ListOf(S.Number(-1e9, 1e9), length=3)
#: each hemisphere's camera as :meth:`QtCortexView.camera_state` saves it
CAMERA = S.Optional(S.ListOf(S.record(position=_POINT, focal_point=_POINT, view_up=_DIRECTION), max_items=2))
BRUSH_RADIUS = S.Number(0.5, 50.0)  # mm along the surface, the brush spin box's range
#: the overlay's colours, as :meth:`QtCortexView.update_overlay_style` takes them
OVERLAY_STYLE: dict[str, S.Spec] = {
    "cmap": S.Satisfies(_is_colormap, "the name of a matplotlib colormap"),
    # |value| <= 1e15: vmin + 1 > vmin in float64, which the colour range relies on
    "threshold": S.Optional(S.Number(0, 1e15)), "vmin": S.Optional(S.Number(-1e15, 1e15)),
    "vmax": S.Optional(S.Number(-1e15, 1e15)), "symmetric": S.Boolean(), "visible": S.Boolean(),
    "opacity": S.Number(0.0, 1.0)}
#: one overlay layer's style (:class:`brainview.state.overlays.LayerStyle`); a setting left out keeps its default
LAYER_STYLE = S.Record(OVERLAY_STYLE, frozenset(OVERLAY_STYLE))
#: what else the user set in the panels: the score chosen, the phrases typed, the tabs and docks open, the
#: overlay list (one optional group, so older files open); no score (None) in a session saved before any was ready
INTERFACE = S.record(score=S.Optional(S.Text(max_len=200)), search_phrase=S.Text(max_len=10_000),
                     concept_phrase=S.Text(max_len=10_000), left_tab=S.Integer(0, 100), language_tab=S.Integer(0, 100),
                     subjects_dock=S.Boolean(), overlays=S.DictOf(S.Choice(*LAYERS), LAYER_STYLE, max_items=len(LAYERS)),
                     optional=("score", "search_phrase", "concept_phrase", "left_tab", "language_tab", "subjects_dock",
                               "overlays"))
#: the synthetic pattern's settings (:class:`brainview.state.session.SyntheticSettings`): the ROI panel's ranges
SYNTHETIC: dict[str, S.Spec] = {"mode": S.Choice(*MODES, *REGION_MODES), "scale": S.Number(0.1, 1000.0),
                                "factor": S.Number(-20.0, 20.0), "stage": S.Choice(*STAGES)}
_IDS = S.IntegerIds()
_BASE64 = S.Satisfies(lambda v: isinstance(v, str) and len(v) < 2**20 and bool(_BASE64_TEXT.fullmatch(v)),
                      "base64 text")

#: the whole session file: every section, every value. A new section or field is one line here
#: (``optional=`` for what older files lack); :func:`load_session` checks all of it before the
#: window applies anything.
SESSION_SCHEMA = S.record(
    format=S.Choice(SESSION_FORMAT), version=S.Integer(0, 2**31),
    bundle=S.record(path=S.Text(non_empty=True), name=S.Text(),
                    sizes=S.DictOf(S.Text(), S.Integer(0, 2**62)), optional=("sizes",)),
    trial=S.Text(max_len=1000), stage=S.Choice(*STAGES), k=S.Integer(1, F.MAX_TRIALS),
    selection=S.record(rois=S.ListOf(S.Text(max_len=1000), max_items=10_000), painted_voxels=_IDS,
                       erased_voxels=_IDS, painted_vertices=_IDS, erased_vertices=_IDS, optional=SELECTION_KEYS),
    synthetic=S.Record(SYNTHETIC, frozenset(SYNTHETIC)),
    cortex=S.record(surface=S.Choice(*SURFACES), view=S.Choice(*VIEW_NAMES), camera=CAMERA,
                    brush_radius=BRUSH_RADIUS, optional=("surface", "view", "camera", "brush_radius")),
    overlay=S.Record({"source": S.Choice("trial", "synthetic", None), "follows_selection": S.Boolean(),
                      **OVERLAY_STYLE}, frozenset({"source", "follows_selection", *OVERLAY_STYLE})),
    browser=S.record(sort=S.Optional(S.ListOf(S.Text(max_len=200), max_items=4)), descending=S.Boolean(),
                     filter=S.Text(max_len=10_000), optional=("sort", "descending", "filter")),
    # other models' caption files and the pair compared (A minus B)
    other_models=S.record(models=S.ListOf(S.record(name=S.Text(non_empty=True, max_len=200),
                                                   path=S.Text(non_empty=True, max_len=4096)), max_items=64),
                          pair=S.Optional(S.ListOf(S.Text(max_len=200), length=2)), optional=("models", "pair")),
    interface=INTERFACE,
    window=S.record(geometry=_BASE64, state=_BASE64, splitters=S.DictOf(S.Text(max_len=200), _BASE64),
                    optional=("geometry", "state", "splitters")),
    optional=("browser", "other_models", "interface"))
#: the sections :func:`save_session` requires of the window's state
SECTIONS = ("bundle", "trial", "stage", "k", "selection", "synthetic", "cortex", "overlay", "window")


def is_session_file(path: str | Path) -> bool:
    """Whether ``path`` looks like a session file (a JSON file) rather than a bundle folder."""
    path = Path(path)
    return path.suffix.lower() == ".json" and not path.is_dir()


#: the files whose sizes identify a bundle's content: the manifest is left out, as ``brainview cache``
#: rewrites it (version 2, the cache's fingerprints) without changing what the session shows
_SIZED_FILES = tuple(rel for rel in F.REQUIRED_FILES if rel != F.MANIFEST)


def bundle_fingerprint(path: str | Path) -> dict[str, Any]:
    """What identifies a bundle's content cheaply: its manifest's name and its required files' sizes."""
    root = Path(path)
    try:
        name = read_user_json(root / F.MANIFEST, F.MAX_MANIFEST_BYTES)["name"]
    except UserError as exc:
        raise UserError(f"{root} is not a readable bundle ({exc})") from None
    except (KeyError, TypeError):
        raise UserError(f"{root} is not a readable bundle (its manifest names no bundle)") from None
    sizes = {rel: (root / rel).stat().st_size for rel in _SIZED_FILES if (root / rel).is_file()}
    return {"path": str(root.resolve()), "name": name, "sizes": sizes}


def bundle_problem(recorded: dict[str, Any], path: str | Path | None = None) -> str | None:
    """Why the bundle at ``path`` (default: the recorded path) is not the one the session was saved on,
    or None when it is."""
    root = Path(path if path is not None else recorded["path"])
    if not (root / F.MANIFEST).is_file():
        return f"there is no bundle at {root} any more"
    try:
        found = bundle_fingerprint(root)
    except UserError as exc:
        return str(exc)
    if found["name"] != recorded.get("name"):
        return f"the bundle at {root} is {found['name']!r}, the session was saved on {recorded.get('name')!r}"
    changed = sorted(rel for rel in set(found["sizes"]) | (set(recorded.get("sizes", {})) & set(_SIZED_FILES))
                     if found["sizes"].get(rel) != recorded.get("sizes", {}).get(rel))
    if changed:
        return f"the bundle at {root} changed since the session was saved ({', '.join(changed)})"
    return None


def save_session(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (the sections of :data:`SECTIONS`) as a session file, atomically."""
    missing = [key for key in SECTIONS if key not in state]
    if missing:
        raise ValueError(f"session state lacks {missing}")
    document = {"format": SESSION_FORMAT, "version": SESSION_VERSION, **state}
    return write_atomic(path, (json.dumps(document, indent=1) + "\n").encode("utf-8"))


def load_session(path: str | Path) -> dict[str, Any]:
    """Read a session file and check all of it against :data:`SESSION_SCHEMA`; one clear
    ``UserError`` naming the file for anything wrong, before the window changes anything."""
    document = read_user_json(path, MAX_SESSION_BYTES, f"session file {path}")
    if not isinstance(document, dict) or document.get("format") != SESSION_FORMAT:
        raise UserError(f"{path} is not a brainview session file")
    if document.get("version") != SESSION_VERSION:
        raise UserError(f"{path} is session format version {S.shown(document.get('version'))}; "
                        f"this brainview reads version {SESSION_VERSION}")
    try:
        SESSION_SCHEMA.check(document, "")
    except S.SchemaError as exc:
        raise UserError(f"{path}: {exc}") from None
    return document
