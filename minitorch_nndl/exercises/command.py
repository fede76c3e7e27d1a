"""The command line: ``list``, ``start DIR [--force]``, ``check NAME|--all [--dir DIR] [--solutions]``.

Exit status: 0 when everything asked for passes (or was written), 1 when an exercise
fails or ``start`` refuses to overwrite files, 2 for a usage mistake (an unknown name,
a missing folder or file, a syntax error in a student file), always as one ``error: ...``
line that says what to do, never a traceback.  ``check --all`` reports a broken file in
that line and goes on with the other exercises (exit status 2 at the end).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import OneLineParser, UsageError, run_program, whole_number
from . import COMMAND, DEFAULT_EXAMPLES, EXERCISES, ExerciseError, check, exercise, start
from .workspace import require_folder

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=COMMAND, description="Build-it-yourself backprop exercises, graded by check_op.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    commands.add_parser("list", help="the exercises in teaching order, with the chapter that explains each")
    begin = commands.add_parser("start", help="write one stub file per exercise into DIR")
    begin.add_argument("dir", metavar="DIR", help="the folder for your exercise files (created if needed)")
    begin.add_argument(
        "--force",
        action="store_true",
        help="overwrite existing files (a changed one is kept as NAME.py.bak, never over an older .bak)",
    )
    grade = commands.add_parser("check", help="grade one exercise (NAME) or all of them (--all)")
    grade.add_argument("name", nargs="?", metavar="NAME", help="the exercise to grade (see list)")
    grade.add_argument("--all", action="store_true", help="grade every exercise, in teaching order")
    grade.add_argument("--dir", default=None, metavar="DIR", help="the folder of your exercise files (default: .)")
    grade.add_argument("--solutions", action="store_true", help="grade the library's own ops instead (self-test)")
    grade.add_argument(
        "--examples",
        type=whole_number(1),
        default=DEFAULT_EXAMPLES,
        metavar="N",
        help=f"drawn inputs per stage (default {DEFAULT_EXAMPLES}; fewer is quicker)",
    )
    return parser


def _list() -> int:
    width = max(len(ex.name) for ex in EXERCISES)
    for number, ex in enumerate(EXERCISES, start=1):
        print(f"{number:2d}. {ex.name:<{width}}  {ex.title}  ({ex.chapter})")
    print(f"\nStart with `{COMMAND} start DIR`, then `{COMMAND} check {EXERCISES[0].name} --dir DIR`.")
    return 0


def _start(args: argparse.Namespace) -> int:
    written = start(args.dir, force=args.force)
    print(f"wrote {len(written)} exercise files to {args.dir}: " + ", ".join(p.name for p in written))
    print(f"first: edit {written[0].name}, then `{COMMAND} check {EXERCISES[0].name} --dir {args.dir}`")
    return 0


def _check(args: argparse.Namespace) -> int:
    if args.all == (args.name is not None):
        raise UsageError("check needs one exercise NAME or --all (not both)")
    if args.solutions and args.dir is not None:
        raise UsageError("--solutions grades the library's own ops; it reads no --dir")
    chosen = EXERCISES if args.all else (exercise(args.name),)
    directory = "." if args.dir is None else args.dir
    if not args.solutions:
        require_folder(Path(directory))  # before --all, so a wrong folder is one error, not one per exercise
    if not args.all:
        result = check(chosen[0].name, directory, solutions=args.solutions, examples=args.examples)
        print(result.text())
        return 0 if result.passed else 1
    failed, broken = [], False
    for ex in chosen:  # one broken file does not hide the report on the others
        try:
            result = check(ex.name, directory, solutions=args.solutions, examples=args.examples)
        except ExerciseError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            failed.append(ex.name)
            broken = True
            continue
        print(result.text(), flush=True)
        if not result.passed:
            failed.append(ex.name)
    summary = f"{len(chosen) - len(failed)} of {len(chosen)} exercises pass"
    if failed:
        summary += f"; next: {failed[0]} (`{COMMAND} check {failed[0]} --dir {directory}`)"
    print(summary)
    return 2 if broken else (1 if failed else 0)


def main(argv: list[str] | None = None) -> int:
    """Run the exercises command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    actions = {"list": lambda args: _list(), "start": _start, "check": _check}
    return run_program(build_parser(), argv, lambda args: actions[args.command](args))
