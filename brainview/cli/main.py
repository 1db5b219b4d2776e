"""The ``brainview`` command: the app with no arguments, headless commands otherwise (DESIGN.md §5).

Every user mistake ends with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Sequence

from brainview.cli.benchmark import BENCHMARK_COMMANDS, add_benchmark_commands
from brainview.cli.bundle import BUNDLE_COMMANDS, add_bundle_commands
from brainview.cli.desktop import DESKTOP_COMMANDS, add_desktop_commands
from brainview.cli.evaluation import EVALUATION_COMMANDS, add_evaluation_commands
from brainview.cli.exports import EXPORT_COMMANDS, add_export_commands
from brainview.cli.language import LANGUAGE_COMMANDS, add_language_commands
from brainview.cli.output import open_bundle, terminal_text
from brainview.errors import UserError
from brainview.paths import demo_bundle_path

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brainview", description="Explore fMRI-to-language decoding bundles. "
                                       "With no command, opens the app on the embedded demo bundle.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str, bundle: bool = True, json_flag: bool = True,
            path_required: bool = False) -> argparse.ArgumentParser:
        """A subcommand; its PATH may be left out (the demo) unless another positional follows it,
        which argparse would otherwise take for PATH."""
        p = sub.add_parser(name, help=help_text, description=help_text)
        if bundle and path_required:
            p.add_argument("path", metavar="PATH", help="bundle directory")
        elif bundle:
            p.add_argument("path", metavar="PATH", nargs="?", help="bundle directory (default: the embedded demo)")
        if json_flag:
            p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
        return p

    p = add("open", "open the app on a bundle, a study (study.json) or a session file (SESSION.json)", json_flag=False)
    p.add_argument("--device", help="auto, cpu or cuda (default: the one used last)")
    p.add_argument("--captions", action="append", default=[], metavar="NAME=FILE",
                   help="another model's captions of the test trials, shown beside the stages (repeatable)")
    add_bundle_commands(add)
    add_evaluation_commands(add)
    add_benchmark_commands(add)
    add_export_commands(add)
    add_desktop_commands(add)
    p = add("screenshot", "render the main window on a bundle (or a study) to a PNG and exit", json_flag=False)
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--size", default="1600x1000", help="window size WIDTHxHEIGHT")
    p.add_argument("--captions", action="append", default=[], metavar="NAME=FILE",
                   help="other models' captions (the table sorted by the first minus the second)")
    add_language_commands(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "path", "") is None:
        args.path = str(demo_bundle_path())
    try:
        if args.command is None:
            return _run_app(None, None)
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"brainview: error: {terminal_text(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("brainview: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``brainview info | head``): stop quietly, as other command-line tools do
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141


def _run_app(path: str | None, device: str | None, captions: Sequence[str] = ()) -> int:
    from brainview.qt.app import run_app

    return run_app(path, device=device, captions=tuple(captions))


def _check_caption_specs(specs: Sequence[str]) -> None:
    """``--captions NAME=FILE``: a mistake is a user error before any window exists."""
    from brainview.analysis.model_captions import parse_spec

    for spec in specs:
        name, path = parse_spec(spec)
        if not Path(path).is_file():
            raise UserError(f"captions file {path} ({name}) does not exist")


def cmd_open(args) -> int:
    if not Path(args.path).exists():
        raise UserError(f"no bundle or session at {args.path}: the path does not exist")
    from brainview.analysis.study import is_study, load_study
    from brainview.state.session_file import is_session_file, load_session

    if is_study(args.path):
        study = load_study(args.path)  # a broken study is a user error before any window exists
        for subject in study.ids:
            study.bundle(subject)
    elif is_session_file(args.path):
        load_session(args.path)  # a broken session file is a user error before any window exists
    _check_caption_specs(args.captions)
    return _run_app(args.path, args.device, args.captions)



def cmd_screenshot(args) -> int:
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise UserError(f"--size must look like 1600x1000, got {args.size!r}") from None
    from brainview.analysis.study import is_study, load_study

    if is_study(args.path):
        study = load_study(args.path)  # a broken study is a user error before any window exists
        for subject in study.ids:
            study.bundle(subject)
    else:
        open_bundle(args.path)  # a broken bundle is a user error before any window exists
    _check_caption_specs(args.captions)
    from brainview.qt.app import screenshot

    screenshot(args.path, args.out, size=(width, height), captions=tuple(args.captions))
    print(args.out)
    return 0


COMMANDS = {"open": cmd_open, "screenshot": cmd_screenshot, **BUNDLE_COMMANDS, **EVALUATION_COMMANDS, **BENCHMARK_COMMANDS,
            **EXPORT_COMMANDS,
            **DESKTOP_COMMANDS, **LANGUAGE_COMMANDS}
