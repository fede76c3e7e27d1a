"""Build-it-yourself exercises: write the backward of an op, and our own toolkit grades it.

    python3 -m minitorch_nndl.exercises list             # the exercises, in teaching order
    python3 -m minitorch_nndl.exercises start DIR        # one stub file per exercise, into DIR
    python3 -m minitorch_nndl.exercises check mul --dir DIR
    python3 -m minitorch_nndl.exercises check --all --dir DIR
    python3 -m minitorch_nndl.exercises check --all --solutions   # our own ops through the same grader

Each stub gives the forward and leaves the backward (or, for the optimizers, the step)
to write.  ``check`` takes the student's class as it is (nothing in the library is
patched), compares it with ours on Hypothesis-drawn inputs, runs ``check_op`` on them
and trains a tiny CNN with it (:mod:`.grader`).  The same from Python::

    from minitorch_nndl import exercises
    exercises.start("my-exercises")
    print(exercises.check("mul", "my-exercises").text())

Grading needs Hypothesis (the ``dev`` extra); listing and writing stubs do not.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .catalog import EXERCISES, Exercise, by_name, names
from .workspace import COMMAND, ExerciseError, StubsExistError, load, start, stub_text

if TYPE_CHECKING:
    from .grader import Result

__all__ = [
    "EXERCISES",
    "Exercise",
    "ExerciseError",
    "StubsExistError",
    "check",
    "check_all",
    "exercise",
    "load",
    "names",
    "start",
    "stub_text",
]

DEFAULT_EXAMPLES = 25


def exercise(name: str) -> Exercise:
    """The exercise called ``name``; :class:`ExerciseError` naming the closest ones when there is none."""
    found = by_name(name)
    if found is None:
        import difflib

        close = difflib.get_close_matches(name, names(), n=1)
        guess = f"did you mean {close[0]}? " if close else ""
        raise ExerciseError(f"no exercise named {name!r}; {guess}`{COMMAND} list` shows them all")
    return found


def _grader() -> object:
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        raise ExerciseError(
            "grading draws inputs with Hypothesis, which is not installed: pip install hypothesis"
        ) from None
    from . import grader

    return grader


def check(name: str, directory: str | Path = ".", solutions: bool = False, examples: int = DEFAULT_EXAMPLES) -> Result:
    """Grade the student's answer to exercise ``name`` in ``directory`` (ours with ``solutions``).

    ``examples`` is the number of drawn inputs per stage.  Returns a :class:`~.grader.Result`:
    ``.passed``, and ``.text()``, the report.  A mistake in the files themselves (missing,
    a syntax error) raises :class:`ExerciseError`.
    """
    grader = _grader()
    ex = exercise(name)
    if solutions:
        from .solutions import solution

        return grader.grade(ex, solution(ex.name), "ours", examples)
    folder = Path(directory)
    answer = load(ex, folder)
    return grader.grade(ex, answer, str(folder / ex.file), examples, student_dir=folder)


def check_all(directory: str | Path = ".", solutions: bool = False, examples: int = DEFAULT_EXAMPLES) -> list[Result]:
    """:func:`check` every exercise, in teaching order."""
    return [check(ex.name, directory, solutions, examples) for ex in EXERCISES]
