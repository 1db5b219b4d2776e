"""What every ``brainview`` command shares to read its inputs and print its answer: one place, so the
command modules (:mod:`brainview.cli`, :mod:`brainview.cli.bundle`, :mod:`brainview.cli.language`)
print the same way and none has to import another late.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from brainview.errors import UserError

#: control characters, line separators and the bidirectional overrides (a name that reorders what follows)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_text(text: str) -> str:
    """Text safe to print: control characters (ANSI escapes, carriage returns) and lone surrogates
    shown as escapes instead of reaching the terminal."""
    text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def emit(args, payload: dict[str, Any], lines: list[str]) -> int:
    """Print the answer: the JSON object with ``--json``, else the text lines; exit status 0."""
    # JSON escapes every non-ASCII and control character itself
    print(json.dumps(payload, indent=2) if args.json else "\n".join(terminal_text(line) for line in lines))
    sys.stdout.flush()  # a closed pipe is reported here, inside main, not at interpreter exit
    return 0


def open_bundle(path: str):
    """The bundle at ``path`` (``UserError`` for a broken one); the bundle package is imported on use."""
    from brainview.bundle import open_bundle as open_checked

    return open_checked(path)


def check_output_path(path: str) -> None:
    """Refuse an output path before any work (a folder, /proc, /dev, a missing folder, a too-long name)."""
    from brainview.bundle.user_files import check_output_path as check

    check(path)


def write_table(path: str, table) -> None:
    """Save a table as CSV at the path given with ``--out`` (atomically)."""
    from brainview.analysis.tables import write_csv

    if not path.lower().endswith(".csv"):
        raise UserError(f"--out must name a .csv file, got {path}")
    try:
        write_csv(path, table)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc}") from None


def trial_index(bundle, trial_id: str | None) -> int:
    """The index of a trial given by id (or by index when no trial has that id); the first when None."""
    if trial_id is None:
        return 0
    ids = [t["id"] for t in bundle.trials]
    if trial_id in ids:
        return ids.index(trial_id)
    if trial_id.isdigit() and int(trial_id) < len(ids):
        return int(trial_id)
    raise UserError(f"no trial {trial_id!r} in {bundle.path} (ids look like {ids[0]!r})")


def repeats_label(fmri_repeats: str) -> str:
    """What each trial's pattern is, in words."""
    return {"all": "each trial the mean of all its repeats", "1": "each trial's first repeat alone",
            "2": "each trial the mean of its first two repeats"}[fmri_repeats]


def add_cpu_precision(parser) -> None:
    """``--cpu-precision`` for a command that captions: what the language model runs in on a CPU."""
    from brainview.decoding.cpu_precision import CPU_PRECISIONS, DEFAULT_CPU_PRECISION

    parser.add_argument("--cpu-precision", choices=CPU_PRECISIONS, default=DEFAULT_CPU_PRECISION,
                        help=f"the captioner's weights on a CPU: int8 is fastest, float32 exact "
                             f"(default: {DEFAULT_CPU_PRECISION}; a GPU always uses float16)")


def caption_progress(every: float = 5.0):
    """A ``progress(done, total)`` printing "captions D/T" on stderr at most every ``every`` seconds, and
    at the end: a long captioning run on a CPU says it is alive without flooding the terminal."""
    import time

    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= every:
            last[0] = now
            print(f"captions {done}/{total}", file=sys.stderr, flush=True)

    return report
