"""Packaging: the wheel works outside the source tree (installed into a fresh virtual environment,
run from another folder), the desktop entry and AppStream metainfo validate, ``install-desktop``
installs them for a user, and pyproject's explicit package list covers the code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from brainview.cli import main

REPO = Path(__file__).resolve().parents[1]
LINUX = REPO / "packaging" / "linux"


def test_package_list_covers_every_package():
    from setuptools import find_packages

    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    code = set(find_packages(str(REPO), include=["brainview*"]))
    assert code <= set(listed), f"add {sorted(code - set(listed))} to [tool.setuptools] packages"
    assert set(listed) - code == {"brainview.resources", "brainview.desktop"}


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils is not installed")
def test_desktop_entry_validates():
    result = subprocess.run(["desktop-file-validate", str(LINUX / "brainview.desktop")], capture_output=True, text=True)
    assert result.returncode == 0 and "error" not in result.stdout, result.stdout


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstream is not installed")
def test_metainfo_validates():
    result = subprocess.run(["appstreamcli", "validate", "--no-net", "--pedantic",
                             str(LINUX / "org.brainview.brainview.metainfo.xml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_icons_come_in_the_usual_sizes():
    from PIL import Image

    for size in (16, 32, 48, 64, 128, 256, 512):
        assert Image.open(LINUX / "icons" / f"{size}x{size}" / "brainview.png").size == (size, size)
    assert (LINUX / "icons" / "brainview.svg").read_text().lstrip().startswith("<?xml")


def test_install_desktop_for_the_user(tmp_path, capsys):
    assert main(["install-desktop", "--prefix", str(tmp_path)]) == 0
    entry = tmp_path / "applications" / "brainview.desktop"
    exec_line = next(line for line in entry.read_text().splitlines() if line.startswith("Exec="))
    assert exec_line.endswith(" open %f") and "brainview" in exec_line
    assert (tmp_path / "metainfo" / "org.brainview.brainview.metainfo.xml").is_file()
    assert (tmp_path / "icons" / "hicolor" / "48x48" / "apps" / "brainview.png").is_file()
    assert (tmp_path / "icons" / "hicolor" / "scalable" / "apps" / "brainview.svg").is_file()
    if shutil.which("desktop-file-validate"):
        assert subprocess.run(["desktop-file-validate", str(entry)], capture_output=True).returncode == 0
    assert main(["install-desktop", "--prefix", str(tmp_path), "--uninstall"]) == 0
    assert not entry.exists()


def test_wheel_works_in_a_fresh_venv_from_any_folder(tmp_path):
    """Build the wheel, install it (no dependencies: they come from this environment's site-packages,
    added by a .pth file, so no network is needed), and run the installed command elsewhere."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(REPO),
                    "-w", str(dist)], check=True, capture_output=True, cwd=tmp_path)
    wheel = next(dist.glob("brainview-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "brainview-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("BRAINVIEW_DEMO", "PYTHONPATH")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    command = venv / "bin" / "brainview"

    def run(*args):
        return subprocess.run([str(command), *args], cwd=elsewhere, env=env, capture_output=True, text=True,
                              timeout=300)

    info = run("info", "--json")
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    assert summary["path"].startswith(purelib) and summary["valid"]  # the demo inside the installed package
    located = subprocess.run([str(python), "-c", "import brainview; print(brainview.__file__)"], cwd=elsewhere,
                             env=env, capture_output=True, text=True).stdout
    assert located.startswith(purelib)  # not the source checkout
    shot = run("screenshot", "--out", str(elsewhere / "shot.png"), "--size", "1400x900")
    assert shot.returncode == 0, shot.stderr
    from PIL import Image

    assert Image.open(elsewhere / "shot.png").size == (1400, 900)
    installed = run("install-desktop", "--prefix", str(tmp_path / "share"))
    assert installed.returncode == 0, installed.stderr
    assert str(command) in (tmp_path / "share" / "applications" / "brainview.desktop").read_text()
