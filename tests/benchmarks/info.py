"""``brainview info`` (validate and summarize a bundle): time and peak memory, against a bare ``cat`` of
the same files to /dev/null in the same run (DESIGN.md §8: absolute times drift on shared machines).

    .venv/bin/python tests/benchmarks/info.py BUNDLE [--runs 3]

The reference reads every file validation reads (everything but ``vlm/``, whose folders are only
checked for links), so the ratio says what brainview adds to reading the bundle once. Each run is
a fresh process; peak memory is its maximum resident set (``wait4``). Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def timed(argv: list[str]) -> tuple[float, float]:
    """Seconds and peak resident GiB of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{' '.join(argv[:3])}… failed: {process.stderr.read().decode()[-500:]}")
    return seconds, usage.ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    files = sorted(str(p) for p in args.bundle.rglob("*")
                   if p.is_file() and p.relative_to(args.bundle).parts[0] != "vlm")
    size = sum(Path(f).stat().st_size for f in files)
    runs = {"cat": [], "info": []}
    for _ in range(args.runs):  # interleaved, so both see the same load and page cache
        runs["cat"].append(timed(["cat", *files]))
        runs["info"].append(timed([sys.executable, "-m", "brainview", "info", str(args.bundle)]))
    median = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}
    print(f"bundle: {args.bundle} ({len(files)} files, {size / 2**30:.2f} GiB read), runs: {args.runs}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'cat FILES > /dev/null (reference):':<40}{median['cat'][0]:6.2f} s  {median['cat'][1]:5.2f} GiB")
    print(f"{'brainview info:':<40}{median['info'][0]:6.2f} s  {median['info'][1]:5.2f} GiB   "
          f"({median['info'][0] / median['cat'][0]:.1f}× cat)")


if __name__ == "__main__":
    main()
