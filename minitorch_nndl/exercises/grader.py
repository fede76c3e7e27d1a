"""The grader: a student's answer against ours, on Hypothesis-drawn inputs, then through check_op, then in a CNN.

For an op exercise the student's ``Function`` is used as it is (its own forward and
backward; the library is never patched), in three stages:

1. **against ours**: on every drawn input, the student's forward and backward are called
   directly (float64) and compared with our op's output and autograd gradients for the
   same ``sum(y * w)``; a mismatch names the input, the element, expected against got.
2. **check_op**: :func:`minitorch_nndl.testing.check_op` on the same drawn inputs, the
   toolkit our own ops pass: float64 finite differences, the float32 pass, strided
   layouts, no input modified in place.
3. **tiny CNN**: a few training steps with the student's op in the network agree with
   the same steps with ours (:mod:`.tiny_cnn`).

An optimizer exercise is compared with ours step by step (parameter and state), then
trains the tiny CNN.  Hypothesis shrinks a failure to a small input before it is
reported, and each failure kind comes with the exercise's hint for the usual mistake.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..autograd import Context, Function
from ..tensor import Tensor
from ..testing.check import OpCheckError, check_op
from . import tiny_cnn
from .catalog import Exercise
from .solutions import solution

__all__ = ["Finding", "Result", "grade"]

ATOL, RTOL = 1e-6, 1e-5  # float64 answer against float64 answer: any real mistake is far larger


@dataclass
class Finding:
    """What went wrong, in words a student can act on."""

    kind: str  # "not implemented", "error", "count", "missing", "shape", "dtype", "values", "forward", ...
    lines: list[str]
    example: str = ""  # the input it happened on
    shrunk: bool = True  # drawn and shrunk by Hypothesis (False: one of the explicit cases)


@dataclass
class Result:
    """The outcome of grading one exercise."""

    exercise: Exercise
    source: str  # the student's file, or "ours"
    finding: Finding | None = None
    stages: list[str] = field(default_factory=list)  # what passed, in order

    @property
    def passed(self) -> bool:
        return self.finding is None

    def text(self) -> str:
        """The report: one line when it passed; what, where, expected against got, and a hint when not."""
        ex = self.exercise
        if self.finding is None:
            return f"{ex.name}: passed ({self.source}): " + "; ".join(self.stages)
        f = self.finding
        lines = [f"{ex.name}: FAILED ({f.kind}) in {self.source}"]
        if self.stages:
            lines.append("  passed so far: " + "; ".join(self.stages))
        if f.example and f.kind != "not implemented":
            lines.append(f"  {'smallest failing' if f.shrunk else 'failing'} input: {f.example}")
        lines += [f"  {line}" for line in f.lines]
        hint = _hint(ex, f)
        if hint:
            lines.append(f"  hint: {hint}")
        lines.append(f"  explained in: {ex.chapter}")
        return "\n".join(lines)


def _hint(ex: Exercise, finding: Finding) -> str | None:
    if finding.kind == "not implemented":
        return None
    if finding.kind == "check_op":
        return _check_op_hint(" ".join(finding.lines)) or ex.hint("values")
    if finding.kind in ("sign", "factor"):
        return ex.hint("values")
    if finding.kind == "dtype":
        return _check_op_hint("dtype")
    if finding.kind in ("count", "missing"):
        return "backward returns one gradient per forward input, in order (None only for non-tensor arguments)"
    return ex.hint(finding.kind) or (ex.hint("values") if finding.kind in ("error", "e2e") else None)


def _check_op_hint(message: str) -> str | None:
    if "float32" in message or "dtype" in message:
        return (
            "float32 in, float32 out: a NumPy float64 scalar or array in the backward promotes the gradient "
            "(use Python numbers, or x.dtype.type(...))"
        )
    if "mutation" in message:
        return "do not change saved arrays or grad in place (x *= ...); compute new arrays"
    if "layout" in message or "contiguous" in message:
        return "inputs can be transposed or strided views: avoid .data tricks that assume C order (use reshape)"
    return None


class _FoundError(Exception):
    """Raised inside a Hypothesis test to carry a Finding out (after shrinking)."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.kind)
        self.finding = finding


def _search(strategy: Any, test: Callable[[Any], Finding | None], max_examples: int, explicit: list) -> Finding | None:
    """Run ``test`` on up to ``max_examples`` drawn inputs, then on the ``explicit`` ones; the first Finding, or None.

    A Finding on a drawn input is shrunk by Hypothesis to the smallest input that still fails.
    """
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings

    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
    )
    @given(strategy)
    def run(example: Any) -> None:
        finding = test(example)
        if finding is not None:
            raise _FoundError(finding)

    try:
        run()
    except _FoundError as found:
        return found.finding
    for case in explicit:
        finding = test(case)
        if finding is not None:
            finding.shrunk = False
            return finding
    return None


# ------------------------------------------------------------------ describing inputs and failures


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


def _count(n: int, noun: str) -> str:
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


def _raised(stage: str, error: BaseException, student_dir: Path | None, own_file: str) -> Finding:
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


# ------------------------------------------------------------------ op exercises


def _float64_copy(value: Any) -> Any:
    if isinstance(value, Tensor) and backend.is_floating(value.dtype):
        return Tensor._wrap(np.array(value.data, dtype=np.float64, order="C"))
    return value


def _differentiable(ex: Exercise, inputs: tuple) -> list[int]:
    return [
        i
        for i, v in enumerate(inputs)
        if isinstance(v, Tensor) and backend.is_floating(v.dtype) and i not in ex.constants
    ]


def _ours(ex: Exercise, inputs: tuple, diff: list[int]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Our output, the projection weights w, and our gradients of sum(y * w), by autograd."""
    args = [_float64_copy(v) for v in inputs]
    for i in diff:
        args[i] = Tensor._wrap(args[i].data, requires_grad=True)
    out = solution(ex.name).apply(*args)
    w = np.random.default_rng(0).standard_normal(out.shape)
    (out * Tensor._wrap(w)).sum().backward()
    grads = [np.zeros(args[i].shape) if args[i].grad is None else np.array(args[i].grad) for i in diff]
    return np.array(out.data), w, grads


def compare_op(ex: Exercise, candidate: type[Function], inputs: tuple, student_dir: Path | None) -> Finding | None:
    """Stage 1 on one input: the candidate's forward and backward, called directly, against ours."""
    diff = _differentiable(ex, inputs)
    expected_out, w, expected_grads = _ours(ex, inputs, diff)
    args = [_float64_copy(v) for v in inputs]
    raw = [v.data if isinstance(v, Tensor) else v for v in args]
    ctx = Context()
    ctx.needs_input_grad = tuple(i in diff for i in range(len(args)))
    try:
        out = candidate.forward(ctx, *raw)
    except Exception as error:
        return _raised("forward", error, student_dir, ex.file)
    wrong = compare_arrays("the forward's output", out, expected_out)
    if wrong is not None:
        wrong.kind = "forward"
        wrong.lines.append("the forward is given in the stub: did it change?")
        return wrong
    incoming = w.copy()
    try:
        grads = candidate.backward(ctx, incoming)
    except Exception as error:
        return _raised("backward", error, student_dir, ex.file)
    if not np.array_equal(incoming, w):
        return Finding(
            "mutation",
            [
                "your backward changed grad (dL/dy) in place; in a graph the same array may also be another "
                "op's gradient: compute a new array (grad * mask, not grad *= mask)"
            ],
        )
    if isinstance(grads, list):  # the engine would take a list for one gradient, and fail
        return Finding("error", ["your backward returned a list: return a tuple, one gradient per input, in order"])
    if not isinstance(grads, tuple):
        grads = (grads,)
    names = ex.input_names
    if len(grads) <= max(diff, default=-1):
        listed = ", ".join(names[: max(diff) + 1])
        message = f"backward returned {len(grads)} gradient(s); return one per input, in order: {listed}"
        return Finding("count", [message])
    for i, expected in zip(diff, expected_grads):
        g = grads[i]
        if g is None:
            return Finding("missing", [f"backward returned None for {names[i]}, which needs a gradient"])
        if isinstance(g, Tensor):
            message = f"the gradient for {names[i]} is a Tensor: backward works on arrays (return .data)"
            return Finding("error", [message])
        wrong = compare_arrays(f"dL/d{names[i]}", g, expected)
        if wrong is not None:
            if wrong.kind == "shape":
                wrong.lines = [f"dL/d{names[i]} has shape {tuple(g.shape)}, but {names[i]} has shape {expected.shape}"]
            elif values_of(w):  # a small case: enough to redo it by hand
                wrong.lines.append(f"the incoming grad (dL/dy, shape {w.shape}) was {values_of(w)}, for yours and ours")
            return wrong
    return None


def _through_check_op(ex: Exercise, candidate: type[Function], inputs: tuple) -> Finding | None:
    """Stage 2 on one input: the toolkit's check_op (finite differences, float32, layouts, no mutation)."""
    diff = _differentiable(ex, inputs)
    try:
        check_op(candidate.apply, *inputs, grad=diff, allow_mutation=ex.constants, name=ex.name)
    except OpCheckError as error:
        message = str(error).splitlines()[0].replace(f"check_op({ex.name}) ", "check_op ")
        for i, name in enumerate(ex.input_names):  # the toolkit numbers the inputs; the report names them
            message = message.replace(f"input {i} ", f"input {i} ({name}) ")
        return Finding("check_op", [message])
    return None


def _e2e_op(ex: Exercise, candidate: Any, student_dir: Path | None) -> Finding | None:
    ops = tiny_cnn.our_ops()
    if ex.name == "im2col":
        ops["conv2d"] = tiny_cnn.conv_from_im2col(candidate)
    else:
        ops[ex.name] = candidate.apply
    return _compare_runs(tiny_cnn.train(), lambda: tiny_cnn.train(ops), student_dir, ex.file)


def _compare_runs(
    ours: tiny_cnn.Trajectory, yours: Callable[[], tiny_cnn.Trajectory], student_dir: Path | None, own_file: str
) -> Finding | None:
    """Stage 3: the student's training run against ours, loss by loss and parameter by parameter."""
    try:
        run = yours()
    except Exception as error:
        finding = _raised("tiny CNN training", error, student_dir, own_file)
        finding.kind = "e2e" if finding.kind == "error" else finding.kind
        return finding
    for step, (a, e) in enumerate(zip(run.losses, ours.losses), start=1):
        if not abs(a - e) <= ATOL + RTOL * abs(e):
            return Finding("e2e", [f"tiny CNN, step {step}: the loss is {a:.8g} with yours, {e:.8g} with ours"])
    for step, (mine, theirs) in enumerate(zip(run.params, ours.params), start=1):
        for name, expected in theirs.items():
            wrong = compare_arrays(f"tiny CNN, parameter {name} after step {step}", mine[name], expected)
            if wrong is not None:
                wrong.kind = "e2e"
                return wrong
    return None


E2E_STAGE = f"tiny CNN: {tiny_cnn.STEPS} training steps agree with ours"


def _grade_op(ex: Exercise, candidate: type[Function], result: Result, examples: int, student_dir: Path | None) -> None:
    from .draws import explicit_cases, strategy_for

    strategy, explicit = strategy_for(ex.name), explicit_cases(ex.name)
    fixed = _count(len(explicit), "fixed one")

    def against_ours(inputs: tuple) -> Finding | None:
        finding = compare_op(ex, candidate, inputs, student_dir)
        if finding is not None:
            finding.example = describe_inputs(ex, inputs)
        return finding

    def toolkit(inputs: tuple) -> Finding | None:
        finding = _through_check_op(ex, candidate, inputs)
        if finding is not None:
            finding.example = describe_inputs(ex, inputs)
        return finding

    stages = (
        (against_ours, f"output and gradients equal ours on {_count(examples, 'drawn input')} and {fixed}"),
        (toolkit, "check_op (float64 gradcheck, float32, strided layouts, no mutation) on the same"),
    )
    for test, passed in stages:
        result.finding = _search(strategy, test, examples, explicit)
        if result.finding is not None:
            return
        result.stages.append(passed)
    result.finding = _e2e_op(ex, candidate, student_dir)
    if result.finding is None:
        result.stages.append(E2E_STAGE)


# ------------------------------------------------------------------ optimizer exercises


def _unpack(returned: Any, count: int, fn_name: str) -> tuple | Finding:
    if not isinstance(returned, tuple) or len(returned) != count:
        return Finding("error", [f"{fn_name} must return a tuple of {count} arrays, got {type(returned).__name__}"])
    return returned


def compare_steps(ex: Exercise, candidate: Callable, case: Any, student_dir: Path | None) -> Finding | None:
    """The candidate's step function against ours, step after step on one drawn case."""
    ours = solution(ex.name)
    adam = ex.name == "adam"
    state_names = ("m", "v") if adam else ("buf",)
    mine = [case.param.copy(), *([np.zeros_like(case.param)] * 2 if adam else [None])]
    theirs = [a if a is None else a.copy() for a in mine]
    for t, grad in enumerate(case.grads, start=1):
        extra = (t,) if adam else ()
        expected = ours(theirs[0], grad.copy(), *theirs[1:], *extra, **case.hyper)
        try:
            args = [a if a is None else a.copy() for a in mine]
            returned = candidate(args[0], grad.copy(), *args[1:], *extra, **case.hyper)
        except Exception as error:
            return _raised(f"step {t}", error, student_dir, ex.file)
        returned = _unpack(returned, 1 + len(state_names), ex.attr)
        if isinstance(returned, Finding):
            return returned
        for what, got, want in zip(("param", *state_names), returned, expected):
            wrong = compare_arrays(f"{what} after step {t}", got, np.asarray(want))
            if wrong is not None:
                return wrong
        mine, theirs = list(returned), [np.array(a) for a in expected]
    return None


def _grade_optimizer(
    ex: Exercise, candidate: Callable, result: Result, examples: int, student_dir: Path | None
) -> None:
    from .draws import explicit_cases, strategy_for

    def against_ours(case: Any) -> Finding | None:
        finding = compare_steps(ex, candidate, case, student_dir)
        if finding is not None:
            finding.example = case.describe()
        return finding

    result.finding = _search(strategy_for(ex.name), against_ours, examples, explicit_cases(ex.name))
    if result.finding is not None:
        return
    cases = f"{_count(examples, 'drawn case')} and {_count(len(explicit_cases(ex.name)), 'fixed one')}"
    result.stages.append(f"parameters and state equal ours after every step, on {cases}")
    kind = "adam" if ex.name == "adam" else "sgd"

    def yours() -> tiny_cnn.Trajectory:
        return tiny_cnn.train(optimizer=kind, step_fn=candidate)

    result.finding = _compare_runs(tiny_cnn.train(optimizer=kind), yours, student_dir, ex.file)
    if result.finding is None:
        result.stages.append(E2E_STAGE)


def grade(ex: Exercise, candidate: Any, source: str, examples: int = 25, student_dir: Path | None = None) -> Result:
    """Grade ``candidate`` (a Function subclass, or a step function) as the answer to ``ex``."""
    result = Result(ex, source)
    if ex.optimizer:
        _grade_optimizer(ex, candidate, result, examples, student_dir)
    else:
        _grade_op(ex, candidate, result, examples, student_dir)
    return result
