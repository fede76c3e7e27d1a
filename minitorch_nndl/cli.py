"""What every command-line program here shares: one ``error:`` line with the fix, never a traceback.

A program raises :class:`UsageError` for an option (or a combination) that cannot work and
:class:`DataError` for data, a checkpoint or a device that cannot be used; :func:`run_program`
turns them into one ``error: ...`` line on stderr and exit status 2 or 1, and a Ctrl-C outside
training into status 130.  :class:`OneLineParser` makes argparse's own complaints one line too,
and :func:`whole_number` / :func:`real_number` are ``type=`` checks whose messages say the range.
:func:`command_line` prints a command the user can paste (``python3 examples/x.py --resume ...``).

    def main(argv=None):
        argv = list(sys.argv[1:] if argv is None else argv)
        return run_program(build_parser(), argv, lambda args: run(args, argv))

Standard library only (the CUDA probe imports the package lazily), so any layer may raise these.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

__all__ = [
    "DataError",
    "OneLineParser",
    "UsageError",
    "check_cuda",
    "device_name",
    "command_line",
    "flag",
    "given_options",
    "real_number",
    "run_program",
    "whole_number",
    "without_option",
]


class UsageError(Exception):
    """An option, or a combination of options, that cannot work; the message says what to change (exit 2)."""


class DataError(Exception):
    """The data, a checkpoint or the device cannot be used; the message says why and how to fix it (exit 1)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line usage errors: ``error: ...`` on stderr, exit status 2, no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}\n")


def run_program(
    parser: argparse.ArgumentParser,
    argv: list[str],
    body: Callable[[argparse.Namespace], int],
    interrupted: str = "interrupted (Ctrl-C)",
) -> int:
    """Parse ``argv`` and return ``body(args)``; the exit status of a program.

    0 for ``--help``; 2 for a usage error (argparse's, or :class:`UsageError`); 1 for
    :class:`DataError`; 130 for a Ctrl-C that ``body`` did not handle itself, after printing
    ``interrupted``.  Every error is one ``error: ...`` line on stderr.
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0), or a usage error that argparse has printed (2)
        return int(exc.code or 0)
    try:
        return body(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        return 130


def whole_number(minimum: int, note: str = "") -> Callable[[str], int]:
    """An argparse ``type=`` accepting integers >= ``minimum``; ``note`` is added to the complaint."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}{note}")
        return value

    return parse


def device_name(text: str) -> str:
    """An argparse ``type=`` for ``cpu``, ``cuda`` or ``cuda:N`` (``cuda`` means ``cuda:0``)."""
    name = text.strip().lower()
    if name in ("cpu", "cuda") or (name.startswith("cuda:") and name[5:].isdigit()):
        return name
    raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N (a GPU number), got {text!r}")


def real_number(low: float, high: float = math.inf, low_ok: bool = True, note: str = "") -> Callable[[str], float]:
    """An argparse ``type=`` accepting finite numbers in ``[low, high)`` (``(low, high)`` unless ``low_ok``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (value == low and not low_ok) or value >= high:
            if high == math.inf:
                bound = f"{low:g} or more" if low_ok else f"more than {low:g}"
            else:
                bound = f"at least {low:g} and below {high:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}{note}")
        return value

    return parse


def given_options(args: argparse.Namespace) -> set[str]:
    """The options typed on the command line, for a parser whose every default is None."""
    return {name for name, value in vars(args).items() if value is not None}


def flag(name: str) -> str:
    """The option an ``argparse`` destination comes from: ``"data_dir"`` -> ``"--data-dir"``."""
    return "--" + name.replace("_", "-")


def command_line(script: str | os.PathLike, *args: str) -> str:
    """``python3 SCRIPT ARGS...`` as the user can paste it: the script relative to the working folder
    when it is below it (``examples/x.py``), else its absolute path; arguments quoted for the shell."""
    path = Path(script).resolve()
    relative = os.path.relpath(path)
    return shlex.join(["python3", relative if not relative.startswith("..") else str(path), *args])


def without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (``--opt V`` or ``--opt=V``)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


def check_cuda(device: str, instead: str) -> None:
    """Raise :class:`DataError` when ``device`` is CUDA and CUDA is not usable here.

    The message is the backend's reason (no CuPy, no GPU, no CUDA libraries, with how to
    install), then ``instead``: the command to run on the CPU.
    """
    import minitorch_nndl as mt  # noqa: PLC0415  (only a program asking for CUDA pays for the import here)

    if not device.startswith("cuda"):
        return
    index = int(device.partition(":")[2] or 0)
    if mt.cuda.is_available() and index < mt.cuda.device_count():
        return
    try:  # the backend's own message says why and how to install
        mt.zeros(1, device=device)
        reason = "CUDA is not usable here"
    except (RuntimeError, ImportError, OSError) as exc:
        reason = " ".join(str(exc).split())
    raise DataError(f"--device {device}: {reason}\n{instead}")
