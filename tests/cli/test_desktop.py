"""``brainview install-desktop``: Exec and TryExec as the Desktop Entry Specification reads them for any
installation path, a relative $XDG_DATA_HOME ignored (as the XDG specification says), all files or none."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess

import pytest

from brainview.cli import desktop, main


def _exec_args(entry: str) -> tuple[list[str], str]:
    """(Exec's arguments, TryExec) as a desktop environment reads them: the string escapes, then the
    Exec quoting (POSIX double quotes), then %% as %."""
    fields = dict(line.split("=", 1) for line in entry.splitlines() if "=" in line and not line.startswith("#"))

    def unescape(value: str) -> str:
        return value.encode("latin-1", "backslashreplace").decode("unicode_escape") if "\\" in value else value

    args = [a.replace("%%", "%") for a in _split_exec(unescape(fields["Exec"]))]
    return args, unescape(fields["TryExec"])


def _split_exec(value: str) -> list[str]:
    """The specification's Exec quoting: arguments split at spaces; inside double quotes a backslash
    escapes one of " ` $ \\ (written independently of the code under test)."""
    args, current, quoted, i = [], None, False, 0
    while i < len(value):
        c = value[i]
        if quoted and c == "\\" and value[i + 1] in '"`$\\':
            current += value[i + 1]
            i += 2
            continue
        if c == '"':
            quoted, current = not quoted, current or ""
        elif c == " " and not quoted:
            if current is not None:
                args.append(current)
            current = None
        else:
            current = (current or "") + c
        i += 1
    assert not quoted, "unbalanced quotes"
    return args + ([current] if current is not None else [])


@pytest.mark.parametrize("exe", [
    ["/opt/my apps/brainview"], ["/home/a$b/`x`/\"q\"/back\\slash/100%/brainview"],
    ["/usr/bin/python3", "-m", "brainview"], ["/plain/brainview"],
])
def test_exec_and_tryexec_name_the_command_whole(tmp_path, monkeypatch, exe):
    monkeypatch.setattr(desktop, "command", lambda: exe)
    assert main(["install-desktop", "--prefix", str(tmp_path)]) == 0
    entry = (tmp_path / "applications" / "brainview.desktop").read_text()
    args, try_exec = _exec_args(entry)
    assert args == [*exe, "open", "%f"] and try_exec == exe[0]
    if shutil.which("desktop-file-validate"):
        result = subprocess.run(["desktop-file-validate", str(tmp_path / "applications" / "brainview.desktop")],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


def test_a_relative_xdg_data_home_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", "relative/share")
    assert desktop.data_home() == tmp_path / ".local" / "share"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "abs"))
    assert desktop.data_home() == tmp_path / "abs"


def test_a_full_disk_installs_nothing(tmp_path, monkeypatch, capsys):
    calls = []
    real_fsync = os.fsync

    def full(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    assert main(["install-desktop", "--prefix", str(tmp_path)]) == 2
    assert "No space left" in capsys.readouterr().err
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # neither installed files nor temporary ones
