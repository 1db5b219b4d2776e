"""The demo study's three extra subjects, built on this machine on first use (Qt-free): where they go,
whether a build is current, the child process that builds them, and how long that takes here.

Why a child process: the build needs torch and minutes of CPU and must not share the app's
interpreter. Why the time is said from a measurement: the app used to say "about two minutes" and the
build took five; it now says this machine's last build time (``study.json`` records it), and before
the first build the figure measured on a 2-core machine (:data:`MEASURED_BUILD_SECONDS`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from brainview.analysis.study import STUDY_FILE, load_study
from brainview.bundle.format import FMRI_REPEAT_COUNTS, FMRI_REPEATS
from brainview.bundle.user_files import read_user_json
from brainview.decoding.progress import about
from brainview.errors import UserError
from brainview.paths import source_root

#: ``python -m training.demo_world study`` into an empty folder on a 2-core, 24 GB machine shared with a test
#: run (load 2.3-3.7; 144 s of CPU, one build thread; 2026-12-07, docs/notes/issue-22.md item 5): what the
#: app says before this machine has built the study once
MEASURED_BUILD_SECONDS = 205.0
_PROGRESS_LINE = re.compile(r"\[demo build\s+([0-9.]+) s\] (.*)")


def demo_study_folder() -> Path:
    """Where the demo study's extra subjects are built on first use: ``BRAINVIEW_STUDY_CACHE``, else
    ``$XDG_CACHE_HOME/brainview/demo-study`` (``~/.cache`` by default)."""
    if os.environ.get("BRAINVIEW_STUDY_CACHE"):
        return Path(os.environ["BRAINVIEW_STUDY_CACHE"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "brainview" / "demo-study"


def bundle_fingerprint(bundle_path: str | Path) -> str:
    """A hash of what the demo study's extra subjects are derived from: the demo bundle's manifest,
    its models, its test-set embeddings and its single trials where it has them (a rebuilt demo, or one
    that gained ``test/fmri_repeats.npy``, makes the built study stale: its subjects lack those repeats)."""
    import hashlib

    root = Path(bundle_path)
    digest = hashlib.sha256()
    parts = [root / "manifest.json", root / "embeddings" / "image.npy", root / "embeddings" / "text.npy",
             root / "test" / "stimuli.npy"]
    parts += sorted((root / "vlm").rglob("*.safetensors")) if (root / "vlm").is_dir() else []
    parts += [p for p in (root / FMRI_REPEATS, root / FMRI_REPEAT_COUNTS) if p.is_file()]
    for part in parts:
        digest.update(part.relative_to(root).as_posix().encode())
        with open(part, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def demo_study_state(demo_bundle: str | Path, folder: str | Path | None = None) -> tuple[str, Path]:
    """("ready" | "missing" | "stale", path of study.json) for the demo study built from ``demo_bundle``."""
    file = Path(folder or demo_study_folder()) / STUDY_FILE
    if not file.is_file():
        return "missing", file
    try:
        study = load_study(file)
    except UserError:
        return "stale", file
    built_from = study.extra.get("built_from", {})
    if built_from.get("fingerprint") != bundle_fingerprint(demo_bundle):
        return "stale", file
    return "ready", file


def demo_study_builder(demo_bundle: str | Path, out: str | Path | None = None) -> list[str] | None:
    """The command that builds the demo study (``python -m training.demo_world study``), or None where
    the builder is not installed (an installed app without the source tree's ``training/``)."""
    import sys

    root = source_root()
    if not (root / "training" / "demo_world" / "study.py").is_file():
        return None
    return [sys.executable, "-m", "training.demo_world", "study", "--demo", str(demo_bundle),
            "--out", str(out or demo_study_folder())]


def run_builder(command: list[str]):
    """Run the study builder in a child process (it needs torch and minutes of CPU, and must not share the
    app's interpreter), yielding each progress line; returns the path it prints. ``close()`` on the
    generator (a worker quit) stops the child."""
    import subprocess

    root = source_root()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)}
    child = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             bufsize=1)
    lines: list[str] = []
    try:
        for line in child.stderr:
            line = line.strip()
            if line.startswith("[demo build"):
                lines.append(line)
                yield line
            elif line:
                lines.append(line)
        out = child.stdout.read().strip()
        if child.wait() != 0:
            raise UserError("building the demo study failed: "
                            + (lines[-1] if lines else f"exit status {child.returncode}"))
        return out.splitlines()[-1] if out else None
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def expected_build_seconds(folder: str | Path | None = None) -> tuple[float, bool]:
    """How long building the demo study takes here, and whether that is this machine's own figure: the
    last build's time that its ``study.json`` records (current or stale), else :data:`MEASURED_BUILD_SECONDS`."""
    file = Path(folder or demo_study_folder()) / STUDY_FILE
    try:
        seconds = read_user_json(file, 1 << 20).get("build_seconds")
    except (UserError, AttributeError):
        seconds = None
    if isinstance(seconds, (int, float)) and 0 < seconds < 24 * 3600:
        return float(seconds), True
    return MEASURED_BUILD_SECONDS, False


def build_estimate(folder: str | Path | None = None) -> str:
    """"about 5 min, measured on a 2-core machine" or "about 4 min, as the last build here"."""
    seconds, own = expected_build_seconds(folder)
    return f"{about(seconds)}, {'as the last build here' if own else 'measured on a 2-core machine'}"


def build_status(line: str, expected_seconds: float) -> str:
    """A builder progress line as a person reads it: the step, and the time left against the expected total
    (the builder's lines carry the seconds since it started); other lines as they are."""
    match = _PROGRESS_LINE.match(line)
    if match is None:
        return line
    left = expected_seconds - float(match.group(1))
    return f"{match.group(2)} · " + (f"{about(left)} left" if left >= 10 else "almost done")
