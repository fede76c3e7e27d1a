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
from .report import ATOL, RTOL, Finding, compare_arrays, describe_inputs, plural, raised_finding, values_of
from .solutions import solution

__all__ = ["Finding", "Result", "grade"]


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
        return raised_finding("forward", error, student_dir, ex.file)
    wrong = compare_arrays("the forward's output", out, expected_out)
    if wrong is not None:
        wrong.kind = "forward"
        wrong.lines.append("the forward is given in the stub: did it change?")
        return wrong
    incoming = w.copy()
    try:
        grads = candidate.backward(ctx, incoming)
    except Exception as error:
        return raised_finding("backward", error, student_dir, ex.file)
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
        finding = raised_finding("tiny CNN training", error, student_dir, own_file)
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
    fixed = plural(len(explicit), "fixed one")

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
        (against_ours, f"output and gradients equal ours on {plural(examples, 'drawn input')} and {fixed}"),
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
            return raised_finding(f"step {t}", error, student_dir, ex.file)
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
    cases = f"{plural(examples, 'drawn case')} and {plural(len(explicit_cases(ex.name)), 'fixed one')}"
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
