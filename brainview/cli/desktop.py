"""``brainview install-desktop``: put the desktop entry, the icons and the AppStream metainfo where the
freedesktop.org specifications look for them for the current user (``$XDG_DATA_HOME``, default
``~/.local/share``), with ``Exec`` pointing at this installation's ``brainview`` so that a virtual
environment's command works from the application menu. ``--uninstall`` removes them again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from brainview.cortex.roi_io import write_atomic_group
from brainview.errors import UserError
from brainview.paths import desktop_dir

DESKTOP_FILE = "brainview.desktop"
METAINFO_FILE = "org.brainview.brainview.metainfo.xml"


def data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset, empty or relative (the XDG base
    directory specification: a relative path is invalid and ignored, never the current folder)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


def command() -> list[str]:
    """The ``brainview`` command of this installation (absolute), or ``python -m brainview``, as arguments."""
    script = Path(sys.executable).with_name("brainview")
    if script.is_file():
        return [str(script)]
    found = shutil.which("brainview")
    return [found] if found else [sys.executable, "-m", "brainview"]


#: characters that make an Exec argument need quoting (Desktop Entry Specification, "The Exec key")
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def exec_argument(arg: str) -> str:
    """One Exec argument as the specification asks: double-quoted when it holds a reserved character,
    with ``"``, `````, ``$`` and ``\\`` escaped inside the quotes; ``%`` doubled."""
    if any(c in "\n\r" for c in arg):
        raise UserError(f"cannot write a desktop entry for a command with a line break in its path: {arg!r}")
    arg = arg.replace("%", "%%")
    if not any(c in _RESERVED for c in arg):
        return arg
    return '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'


def entry_string(value: str) -> str:
    """A value of a desktop entry's string type: backslashes escaped (the file's own escape rules)."""
    return value.replace("\\", "\\\\")


def targets(root: Path) -> dict[Path, Path]:
    """Source file -> installed path, for every file installed."""
    source = desktop_dir()
    if not (source / DESKTOP_FILE).is_file():
        raise UserError(f"the desktop files are missing from this installation ({source})")
    out = {source / DESKTOP_FILE: root / "applications" / DESKTOP_FILE,
           source / METAINFO_FILE: root / "metainfo" / METAINFO_FILE,
           source / "icons" / "brainview.svg": root / "icons" / "hicolor" / "scalable" / "apps" / "brainview.svg"}
    for png in sorted((source / "icons").glob("*x*/brainview.png")):
        out[png] = root / "icons" / "hicolor" / png.parent.name / "apps" / "brainview.png"
    return out


def desktop_entry(text: str, exe: list[str]) -> str:
    """The entry with ``Exec`` running the command ``exe`` (each argument quoted as the specification
    asks) and ``TryExec`` naming its program whole, spaces and all."""
    lines = []
    for line in text.splitlines():
        if line.startswith("Exec="):
            line = "Exec=" + entry_string(" ".join(exec_argument(a) for a in exe)) + " open %f"
        elif line.startswith("TryExec="):
            line = "TryExec=" + entry_string(exe[0])
        lines.append(line)
    return "\n".join(lines) + "\n"


def install(root: Path | None = None) -> list[Path]:
    """Install for the current user; returns the files written."""
    root = root or data_home()
    files = {}
    for source, target in targets(root).items():
        data = source.read_bytes()
        if target.name == DESKTOP_FILE:
            data = desktop_entry(data.decode("utf-8"), command()).encode("utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        files[target] = data
    written = write_atomic_group(files)  # all complete on disk before any is replaced: no partial install
    for tool, args in (("update-desktop-database", [str(root / "applications")]),
                       ("gtk-update-icon-cache", ["-q", "-t", str(root / "icons" / "hicolor")])):
        if shutil.which(tool):
            subprocess.run([tool, *args], check=False, capture_output=True)
    return written


def uninstall(root: Path | None = None) -> list[Path]:
    root = root or data_home()
    removed = []
    for target in targets(root).values():
        if target.is_file():
            target.unlink()
            removed.append(target)
    return removed


def add_desktop_commands(add) -> None:
    """Register ``install-desktop`` with the ``add(name, help, ...)`` of :func:`brainview.cli.main.build_parser`."""
    p = add("install-desktop", "install the desktop entry, icons and AppStream metainfo for the current user",
            bundle=False, json_flag=False)
    p.add_argument("--uninstall", action="store_true", help="remove them again")
    p.add_argument("--prefix", metavar="DIR", help="data folder (default: $XDG_DATA_HOME or ~/.local/share)")


def cmd_install_desktop(args) -> int:
    root = Path(args.prefix) if args.prefix else None
    try:
        files = uninstall(root) if args.uninstall else install(root)
    except OSError as exc:
        raise UserError(f"cannot {'remove' if args.uninstall else 'install'} the desktop files: {exc}") from None
    for path in files:
        print(path)
    return 0


DESKTOP_COMMANDS = {"install-desktop": cmd_install_desktop}
