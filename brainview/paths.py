"""Where brainview's resources are, in a source checkout and in an installed wheel alike.

The wheel ships ``resources/`` (the embedded demo bundle, the style sheet) as the package data
``brainview/resources`` and ``packaging/linux`` (desktop entry, icons, AppStream metainfo) as
``brainview/desktop`` (see ``[tool.setuptools.package-dir]`` in pyproject.toml); a source checkout
(or an editable install) has them next to the package. ``BRAINVIEW_DEMO`` overrides the demo bundle.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _first(installed: str, checkout: str) -> Path:
    inside = PACKAGE / installed
    return inside if inside.is_dir() else PACKAGE.parent / checkout


def source_root() -> Path:
    """The checkout the package sits in (where ``training/`` is, in a source tree; an installed wheel has none)."""
    return PACKAGE.parent


def resources_dir() -> Path:
    """The folder holding ``demo/`` and ``style.qss``."""
    return _first("resources", "resources")


def desktop_dir() -> Path:
    """The folder holding the desktop entry, the icons and the AppStream metainfo."""
    return _first("desktop", "packaging/linux")


def demo_bundle_path() -> Path:
    """The embedded demo bundle (``BRAINVIEW_DEMO`` overrides it)."""
    return Path(os.environ.get("BRAINVIEW_DEMO", resources_dir() / "demo"))


def demo_captions_dir() -> Path:
    """Other models' captions of the demo's test trials (``python -m training.demo_world captions``)."""
    return resources_dir() / "demo_captions"


def style_path() -> Path:
    return resources_dir() / "style.qss"
