"""Session files (Qt-free): a small JSON document that names a bundle and everything the user set up
on it (trial, stage, selection, synthetic settings, surface, view, overlay, window layout), so that
``brainview open SESSION.json`` or File → Open session… puts the window back as it was.

The bundle is recorded by path and by fingerprint (the manifest's name and the sizes of the bundle's
required files); a session whose bundle moved or changed is detected by :func:`bundle_problem`, and
the app asks for the new location. Files are written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from brainview.bundle import format as F
from brainview.cortex.roi_io import write_atomic
from brainview.errors import UserError

SESSION_FORMAT = "brainview-session"
SESSION_VERSION = 1
#: top-level sections and the type each must have
SECTIONS: dict[str, type] = {"bundle": dict, "trial": str, "stage": str, "k": int, "selection": dict,
                             "synthetic": dict, "cortex": dict, "overlay": dict, "window": dict}
#: sections a file may lack (older files): the trial table's sort column, order and filter; and
#: "interface", what else the user set in the panels (the score chosen, the phrases typed, the tabs and
#: docks open), kept in one group of its own
OPTIONAL_SECTIONS: dict[str, type] = {"browser": dict, "interface": dict}
SELECTION_KEYS = ("rois", "painted_voxels", "erased_voxels", "painted_vertices", "erased_vertices")


def is_session_file(path: str | Path) -> bool:
    """Whether ``path`` looks like a session file (a JSON file) rather than a bundle folder."""
    path = Path(path)
    return path.suffix.lower() == ".json" and not path.is_dir()


def bundle_fingerprint(path: str | Path) -> dict[str, Any]:
    """What identifies a bundle's content cheaply: its manifest's name and its required files' sizes."""
    root = Path(path)
    try:
        manifest = json.loads((root / F.MANIFEST).read_text(encoding="utf-8"))
        name = manifest["name"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{root} is not a readable bundle ({exc})") from None
    sizes = {rel: (root / rel).stat().st_size for rel in F.REQUIRED_FILES if (root / rel).is_file()}
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
    changed = sorted(rel for rel in set(found["sizes"]) | set(recorded.get("sizes", {}))
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
    """Read and check a session file; one clear ``UserError`` for anything wrong with it."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"session file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read session file {path}: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != SESSION_FORMAT:
        raise UserError(f"{path} is not a brainview session file")
    if document.get("version") != SESSION_VERSION:
        raise UserError(f"{path} is session format version {document.get('version')}; "
                        f"this brainview reads version {SESSION_VERSION}")
    for key, kind in SECTIONS.items():
        if not isinstance(document.get(key), kind):
            raise UserError(f"{path}: \"{key}\" must be a {kind.__name__}")
    for key, kind in OPTIONAL_SECTIONS.items():
        if key in document and not isinstance(document[key], kind):
            raise UserError(f"{path}: \"{key}\" must be a {kind.__name__}")
    bundle = document["bundle"]
    if not isinstance(bundle.get("path"), str) or not isinstance(bundle.get("sizes", {}), dict):
        raise UserError(f'{path}: "bundle" must give the bundle\'s "path", "name" and "sizes"')
    selection = document["selection"]
    for key in SELECTION_KEYS:
        values = selection.get(key, [])
        if not (isinstance(values, list) and all(isinstance(v, (str if key == "rois" else int)) for v in values)):
            raise UserError(f'{path}: "selection.{key}" must be a list of '
                            + ("ROI names" if key == "rois" else "integers"))
    return document
