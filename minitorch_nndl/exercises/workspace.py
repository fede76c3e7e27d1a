"""The student's folder: writing the stubs into it (never over their work) and loading their answers from it.

A student file is compiled from its source and run in a fresh module, never imported
into the package and never cached (no ``__pycache__`` in their folder, no stale bytecode
after an edit).  The siblings it imports by plain name (``from unbroadcast import
unbroadcast``) are the student's own files, put in ``sys.modules`` only while it runs.
"""

from __future__ import annotations

import sys
import traceback
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

from ..autograd import Function
from ..cli import DataError, UsageError
from .catalog import EXERCISES, Exercise, by_name

__all__ = ["ExerciseError", "StubsExistError", "load", "start", "stub_text"]

COMMAND = "python3 -m minitorch_nndl.exercises"


class ExerciseError(UsageError):
    """A mistake the student can fix (an unknown name, a missing folder or file, a syntax error); one line."""


class StubsExistError(DataError):
    """``start`` found exercise files already in the folder and wrote nothing."""


def stub_text(exercise: Exercise) -> str:
    """The stub file of ``exercise``, as shipped in ``minitorch_nndl/exercises/stubs``."""
    return resources.files(__package__).joinpath("stubs", exercise.file).read_text(encoding="utf-8")


def _package_root() -> Path:
    return Path(__file__).resolve().parent.parent


def start(directory: str | Path, force: bool = False) -> list[Path]:
    """Write one stub per exercise into ``directory`` (created if needed); the files written.

    Refuses (writing nothing) when any of the files is already there, unless ``force``;
    with ``force`` an existing file that differs from its stub is first kept as
    ``NAME.py.bak`` (``NAME.py.bak2``, ``.bak3``, ... when that is taken: a second
    ``--force`` never overwrites the first one's backup).  A file still equal to its
    stub is rewritten without a backup.
    """
    folder = Path(directory)
    if folder.resolve().is_relative_to(_package_root()):
        raise ExerciseError(f"{folder} is inside the installed package; write the stubs to a folder of your own")
    if folder.exists() and not folder.is_dir():
        raise ExerciseError(f"{folder} is a file, not a folder; give a folder name for the exercises")
    targets = [folder / exercise.file for exercise in EXERCISES]
    existing = [path for path in targets if path.exists()]
    if existing and not force:
        shown = ", ".join(path.name for path in existing[:3])
        if len(existing) > 3:
            shown += f" and {len(existing) - 3} more"
        raise StubsExistError(
            f"{folder} already has {shown} (your work?); nothing was written: choose a new folder, "
            f"or add --force to overwrite them (each changed file is kept as NAME.py.bak)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    for exercise, path in zip(EXERCISES, targets):
        stub = stub_text(exercise)
        if path.exists() and path.read_text(encoding="utf-8", errors="replace") != stub:
            path.replace(_free_backup(path))
        path.write_text(stub, encoding="utf-8")
    return targets


def _free_backup(path: Path) -> Path:
    """``NAME.py.bak``, or the first of ``NAME.py.bak2``, ``.bak3``, ... that does not exist yet."""
    backup, number = path.with_name(path.name + ".bak"), 1
    while backup.exists():
        number += 1
        backup = path.with_name(f"{path.name}.bak{number}")
    return backup


def _line_of(error: BaseException, path: Path) -> str:
    lines = [f.lineno for f in traceback.extract_tb(error.__traceback__) if Path(f.filename) == path]
    return f", line {lines[-1]}" if lines else ""


def _load_module(exercise: Exercise, folder: Path, loading: tuple[str, ...] = ()) -> ModuleType:
    path = folder / exercise.file
    if not path.is_file():
        if any((folder / other.file).is_file() for other in EXERCISES):  # the others are there: do not clobber them
            raise ExerciseError(
                f"{path} does not exist: `{COMMAND} start NEW_FOLDER` writes a fresh set of stubs; "
                f"copy {exercise.file} from there into {folder}"
            )
        raise ExerciseError(f"{path} does not exist: `{COMMAND} start {folder}` writes the exercise files")
    dependencies = {}
    for name in exercise.uses:
        if name in loading:
            raise ExerciseError(f"{path} and {name}.py import each other; keep the imports the stubs have")
        dependencies[name] = _load_module(by_name(name), folder, (*loading, exercise.name))
    source = path.read_text(encoding="utf-8")
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as error:
        raise ExerciseError(f"{path}, line {error.lineno}: {error.msg}; fix it and check again") from None
    module = ModuleType(exercise.name)
    module.__file__ = str(path)
    before = {name: sys.modules.get(name) for name in dependencies}
    sys.modules.update(dependencies)
    try:
        exec(code, module.__dict__)
    except Exception as error:
        raise ExerciseError(
            f"{path}{_line_of(error, path)}: running the file raised {type(error).__name__}: {error}"
        ) from None
    finally:
        for name, previous in before.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
    return module


def require_folder(folder: Path) -> None:
    if folder.is_file():
        raise ExerciseError(f"{folder} is a file: --dir takes the folder that `{COMMAND} start` wrote the stubs to")
    if not folder.is_dir():
        raise ExerciseError(f"no folder {folder}: `{COMMAND} start {folder}` creates it with the exercise files")


def load(exercise: Exercise, directory: str | Path) -> Any:
    """The student's answer to ``exercise`` from ``directory``: their Function subclass or step function."""
    folder = Path(directory)
    require_folder(folder)
    module = _load_module(exercise, folder)
    answer = getattr(module, exercise.attr, None)
    if answer is None:
        raise ExerciseError(f"{folder / exercise.file} defines no {exercise.attr}; keep the name the stub gives it")
    if exercise.optimizer:
        if not callable(answer):
            raise ExerciseError(f"{folder / exercise.file}: {exercise.attr} must be a function")
    elif not (isinstance(answer, type) and issubclass(answer, Function)):
        raise ExerciseError(f"{folder / exercise.file}: {exercise.attr} must be a subclass of minitorch_nndl.Function")
    return answer
