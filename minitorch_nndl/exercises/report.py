"""How the grader puts a failure into words: the worst element, the likely mistake, where it raised.

A :class:`Finding` is what :mod:`.grader` reports: its ``kind`` (``"shape"``, ``"sign"``,
``"factor"``, ``"values"``, ``"not implemented"``, ...) and the lines a student reads.
:func:`compare_arrays` compares an answer with ours to float64 precision and names the worst
element, expected against got, with a diagnosis when the whole answer is off by a sign or a
constant factor; :func:`describe_inputs` shows a (shrunk, small) input with its values.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor
from .catalog import Exercise

__all__ = ["ATOL", "RTOL", "Finding", "compare_arrays", "describe_inputs", "plural", "raised_finding", "values_of"]

ATOL, RTOL = 1e-6, 1e-5  # float64 answer against float64 answer: any real mistake is far larger


@dataclass
class Finding:
    """What went wrong, in words a student can act on."""

    kind: str  # "not implemented", "error", "count", "missing", "shape", "dtype", "values", "forward", ...
    lines: list[str]
    example: str = ""  # the input it happened on
    shrunk: bool = True  # drawn and shrunk by Hypothesis (False: one of the explicit cases)


SHOWN = 4  # an array of at most this many elements is shown with its values (a shrunk input is small)


def values_of(array: Any) -> str:
    """``[0.5, -1]`` for an array of at most ``SHOWN`` elements, else ``""``."""
    array = np.asarray(backend.to_numpy(array))
    if array.size > SHOWN:
        return ""
    if array.ndim == 0:
        return f"{array.item():.4g}"
    return "[" + ", ".join(f"{v:.4g}" for v in array.ravel().tolist()) + "]"


def _describe_value(value: Any) -> str:
    if isinstance(value, Tensor):
        shown = values_of(value.data)
        return f"{value.dtype} {value.shape}" + (f" = {shown}" if shown else "")
    if isinstance(value, np.ndarray):
        return f"array {value.shape}"
    return repr(value)


def describe_inputs(ex: Exercise, inputs: tuple) -> str:
    return ", ".join(f"{name}: {_describe_value(v)}" for name, v in zip(ex.input_names, inputs))


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _fmt(index: tuple) -> str:
    return "(" + ", ".join(str(int(i)) for i in index) + ("," if len(index) == 1 else "") + ")"


def _where(error: BaseException, student_dir: Path | None) -> str:
    """``file.py line N: <code>`` of the innermost frame in the student's folder (or the innermost frame)."""
    frames = traceback.extract_tb(error.__traceback__)
    if student_dir is not None:
        mine = [f for f in frames if Path(f.filename).resolve().parent == student_dir.resolve()]
        frames = mine or frames
    if not frames:
        return ""
    frame = frames[-1]
    try:
        code = Path(frame.filename).read_text(encoding="utf-8").splitlines()[frame.lineno - 1].strip()
    except (OSError, IndexError, TypeError):
        code = frame.line or ""
    return f"{Path(frame.filename).name} line {frame.lineno}: {code}"


def raised_finding(stage: str, error: BaseException, student_dir: Path | None, own_file: str) -> Finding:
    where = _where(error, student_dir)
    if isinstance(error, NotImplementedError):
        lines = [f"not implemented yet: {error}"]
        if where and not where.startswith(f"{own_file} "):  # raised in a sibling file this one uses
            lines.append(f"raised in {where.partition(' ')[0]}, which {own_file} uses: do that exercise first")
        return Finding("not implemented", lines)
    lines = [f"your {stage} raised {type(error).__name__}: {error}"]
    if where:
        lines.append(f"at {where}")
    return Finding("error", lines)


def _simple(factor: float) -> bool:
    """Whether ``factor`` is a whole number or one over one (2, 1/3, -4): what a forgotten n or 1/n gives."""
    if factor == 0:
        return False
    return any(abs(v - round(v)) <= 1e-6 * abs(v) and round(v) != 0 for v in (factor, 1 / factor))


def compare_arrays(what: str, got: Any, expected: np.ndarray) -> Finding | None:
    """None when ``got`` equals ``expected`` to float64 precision; else the worst element, with diagnoses."""
    if not hasattr(got, "shape") or not hasattr(got, "dtype"):
        return Finding("error", [f"{what}: expected an array, got {type(got).__name__}"])
    got = backend.to_numpy(got)
    if got.shape != expected.shape:
        return Finding("shape", [f"{what}: yours has shape {got.shape}, expected {expected.shape}"])
    if got.dtype != expected.dtype:
        return Finding("dtype", [f"{what}: yours has dtype {got.dtype}, expected {expected.dtype}"])
    allowed = ATOL * max(1.0, float(np.max(np.abs(expected), initial=0.0))) + RTOL * np.abs(expected)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(got - expected)
        bad = ~(error <= allowed)
    if not bad.any():
        return None
    excess = np.where(bad, np.nan_to_num(error - allowed, nan=np.inf, posinf=np.inf), -np.inf)
    worst = np.unravel_index(int(np.argmax(excess)), got.shape)
    lines = [
        f"{what}, element {_fmt(worst)}: expected {expected[worst]:.6g}, got {got[worst]:.6g} "
        f"({int(bad.sum())} of {bad.size} elements differ)"
    ]
    kind = "values"
    with np.errstate(invalid="ignore", divide="ignore"):
        nonzero = np.abs(expected) > 1e-12
        ratios = got[nonzero] / expected[nonzero]
    if ratios.size and np.all(np.abs(got) <= 1e-12):
        lines.append("yours is 0 everywhere: is grad multiplied in at all, or is a mask always False?")
    elif ratios.size and np.all(np.isfinite(ratios)) and np.ptp(ratios) <= 1e-6 * max(1.0, abs(ratios[0])):
        same_zeros = np.all(np.abs(got[~nonzero]) <= 1e-9)
        factor = float(ratios[0])
        if same_zeros and abs(factor + 1) < 1e-6:
            kind, note = "sign", "every element has the opposite sign: a minus sign is missing (or extra)"
        elif same_zeros and (ratios.size >= 3 or _simple(factor)):  # one or two ratios agree by chance
            kind, note = "factor", f"every element is {factor:.6g} times ours: a constant factor is off"
        else:
            note = ""
        if note:
            lines.append(note)
    return Finding(kind, lines)
