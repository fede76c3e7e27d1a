"""``check_op``: one call that checks everything an operator owes its users.

For an op ``fn`` and some inputs, :func:`check_op` runs, in order:

1. the forward pass on the inputs as given (any dtype, any memory layout), and
   checks that it did not modify its inputs in place;
2. the output's dtype and device: they follow the inputs (float32 in, float32 out);
3. the values against an optional NumPy ``reference`` (called on NumPy copies);
4. the backward pass of  sum(out * w)  for a fixed random ``w``: gradients have the
   input's shape, dtype and device, and backward did not modify the inputs either;
5. the same forward and backward on contiguous float64 copies: values and
   gradients must agree with step 1 (catches ops that mishandle strided arrays);
6. a float32 pass (when the inputs are float64): float32 outputs and gradients that
   agree with the float64 ones to float32 precision;
7. the gradients against central finite differences in float64, by
   :func:`minitorch_nndl.gradcheck.gradcheck`.

The first failed check raises :class:`OpCheckError` (an ``AssertionError``, so
pytest shows it as a test failure) whose message names the op, the check, the
input (or output) and the element, with both values::

    OpCheckError: check_op(softplus) failed check 'float64 gradcheck': gradcheck failed for
    input 0 (shape (3,)) at index (1,): analytic -0.62, numerical 0.62, ...

This module needs only NumPy (no pytest, no Hypothesis).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import backend
from ..autograd import Function
from ..gradcheck import GradcheckError, gradcheck
from ..tensor import Tensor

__all__ = ["OpCheckError", "assert_grad_close", "check_op"]


class OpCheckError(AssertionError):
    """An operator failed one of :func:`check_op`'s checks; the message says which, where, and by how much."""


# ------------------------------------------------------------------ small helpers


def _op_name(fn: Callable, name: str | None) -> str:
    if name:
        return name
    if isinstance(fn, type) and issubclass(fn, Function):
        return fn.__name__
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, Function):  # SomeFunction.apply
        return owner.__name__
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        layout = "" if value.data.flags.c_contiguous else " non-contiguous"
        device = "" if value.device == "cpu" else f" on {value.device}"
        return f"{value.dtype} {value.shape}{layout}{device}"
    if isinstance(value, np.ndarray):
        return f"ndarray {value.dtype} {value.shape}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _outputs(out: Any) -> list[Any]:
    if isinstance(out, (tuple, list)):
        return list(out)
    return [out]


def _tolerance(dtype: Any, atol: float, rtol: float) -> tuple[float, float]:
    """(atol, rtol) for comparing values computed in ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        return max(atol, 1e-2), max(rtol, 1e-2)
    if dtype == np.float32:
        return max(atol, 1e-4), max(rtol, 1e-3)
    return atol, rtol


def _fmt_index(index: tuple) -> str:
    return "(" + ", ".join(str(int(i)) for i in index) + ("," if len(index) == 1 else "") + ")"


def _first_difference(before: np.ndarray, after: np.ndarray) -> tuple | None:
    """Index of the first element that changed (NaN equal to NaN), or None."""
    if before.shape != after.shape:
        return ()
    same = (before == after) | (np.isnan(before) & np.isnan(after)) if before.dtype.kind in "fc" else before == after
    if np.all(same):
        return None
    return tuple(int(i) for i in np.unravel_index(int(np.argmin(same.reshape(-1))), before.shape))


@dataclass
class _Pass:
    """What one forward+backward run produced, as NumPy arrays."""

    label: str
    outputs: list[np.ndarray | None] = field(default_factory=list)
    grads: dict[int, np.ndarray | None] = field(default_factory=dict)


class _Checker:
    def __init__(self, fn: Callable, inputs: Sequence[Any], name: str) -> None:
        self.fn = fn
        self.inputs = list(inputs)
        self.name = name

    def fail(self, check: str, detail: str) -> OpCheckError:
        shown = ", ".join(f"[{i}] {_describe(v)}" for i, v in enumerate(self.inputs))
        return OpCheckError(f"check_op({self.name}) failed check '{check}': {detail}\n  inputs: {shown}")

    # ---------------------------------------------------------------- comparisons
    def compare(
        self,
        check: str,
        what: str,
        actual: np.ndarray,
        expected: np.ndarray,
        atol: float,
        rtol: float,
        scale_atol: bool = False,
    ) -> None:
        actual = np.asarray(actual)
        expected = np.asarray(expected)
        if actual.shape != expected.shape:
            raise self.fail(check, f"{what} has shape {actual.shape}, expected {expected.shape}")
        if actual.size == 0:
            return
        a = actual.astype(np.float64) if actual.dtype.kind in "biuf" else actual
        e = expected.astype(np.float64) if expected.dtype.kind in "biuf" else expected
        finite = np.isfinite(e)
        if scale_atol and finite.any():
            atol = atol * max(1.0, float(np.max(np.abs(e[finite]))))
        with np.errstate(invalid="ignore", over="ignore"):
            error = np.abs(a - e)
            allowed = atol + rtol * np.abs(e)
            # matching infinities and NaNs agree; everything else must be within tolerance
            same_special = (a == e) | (np.isnan(a) & np.isnan(e))
            bad = ~((error <= allowed) | same_special)
        if bad.any():
            excess = np.where(bad, np.nan_to_num(error - allowed, nan=np.inf, posinf=np.inf), -np.inf)
            worst = np.unravel_index(int(np.argmax(excess)), a.shape)
            raise self.fail(
                check,
                f"{what} at index {_fmt_index(worst)}: got {a[worst]:.8g}, expected {e[worst]:.8g} "
                f"(|diff| {error[worst]:.3g} > allowed {allowed[worst]:.3g}); "
                f"{int(bad.sum())} of {bad.size} elements differ",
            )

    def check_unchanged(
        self, stage: str, label: str, tensors: dict[int, Any], snapshots: dict[int, np.ndarray]
    ) -> None:
        for i, before in snapshots.items():
            after = backend.to_numpy(tensors[i].data if isinstance(tensors[i], Tensor) else tensors[i])
            where = _first_difference(before, after)
            if where is not None:
                detail = f"input {i} was modified in place by {stage}{label}"
                if where:
                    detail += f" at index {_fmt_index(where)}: before {before[where]:.8g}, after {after[where]:.8g}"
                raise self.fail("no input mutation", detail)

    # ---------------------------------------------------------------- one run
    def run(
        self,
        inputs: list[Any],
        diff: Sequence[int],
        label: str,
        allow_mutation: Sequence[int],
        backward: bool,
    ) -> _Pass:
        """One pass: forward (outputs checked), then backward of a random projection (gradients checked)."""
        result = _Pass(label)
        suffix = f" ({label})" if label else ""
        snapshots = {
            i: backend.to_numpy(v.data if isinstance(v, Tensor) else v).copy()
            for i, v in enumerate(inputs)
            if (isinstance(v, Tensor) or isinstance(v, np.ndarray)) and i not in allow_mutation
        }
        leaves = list(inputs)
        for i in diff:
            leaves[i] = Tensor._wrap(inputs[i].data, requires_grad=True)
        try:
            out = self.fn(*leaves)
        except Exception as error:
            raise self.fail("forward", f"{type(error).__name__}: {error}{suffix}") from error
        self.check_unchanged("forward", suffix, leaves, snapshots)
        outs = _outputs(out)
        self.check_outputs(inputs, outs, suffix, result)
        if not (backward and diff):
            return result
        self.backward_projection(outs, suffix)
        self.check_unchanged("backward", suffix, leaves, snapshots)
        self.check_gradients(inputs, leaves, diff, suffix, result)
        return result

    def check_outputs(self, inputs: list[Any], outs: list[Any], suffix: str, result: _Pass) -> None:
        """Outputs are Tensors with the floating inputs' dtype, on the inputs' device."""
        tensor_inputs = [v for v in inputs if isinstance(v, Tensor)]
        floats = [v.dtype for v in tensor_inputs if backend.is_floating(v.dtype)]
        expected_dtype = np.result_type(*floats) if floats else None
        device = tensor_inputs[0].device if tensor_inputs else None
        for k, o in enumerate(outs):
            if not isinstance(o, Tensor):
                raise self.fail("output type", f"output {k} is a {type(o).__name__}, not a Tensor{suffix}")
            if expected_dtype is not None and backend.is_floating(o.dtype) and o.dtype != expected_dtype:
                raise self.fail(
                    "output dtype",
                    f"output {k} has dtype {o.dtype} but the floating inputs are {expected_dtype}{suffix}",
                )
            if device is not None and o.device != device:
                raise self.fail("output device", f"output {k} is on {o.device} but the inputs are on {device}{suffix}")
            result.outputs.append(backend.to_numpy(o.data).copy())

    def backward_projection(self, outs: list[Any], suffix: str) -> None:
        """Backward of sum_k <w_k, output_k> with fixed random weights w_k (one call covers every output)."""
        rng = np.random.default_rng(0)
        objective = None
        for o in outs:
            w = rng.standard_normal(o.shape)
            if not (o.requires_grad and backend.is_floating(o.dtype)):
                continue
            term = (o * Tensor._wrap(backend.asarray(w, dtype=o.dtype, device=o.device))).sum()
            objective = term if objective is None else objective + term
        if objective is not None:
            try:
                objective.backward()
            except Exception as error:
                raise self.fail("backward", f"{type(error).__name__}: {error}{suffix}") from error

    def check_gradients(
        self, inputs: list[Any], leaves: list[Any], diff: Sequence[int], suffix: str, result: _Pass
    ) -> None:
        """Each gradient has its input's shape, dtype and device."""
        for i in diff:
            g = leaves[i].grad
            if g is None:
                result.grads[i] = None
                continue
            x = inputs[i]
            if tuple(g.shape) != x.shape:
                raise self.fail(
                    "gradient shape", f"gradient of input {i} has shape {tuple(g.shape)}, expected {x.shape}"
                )
            if g.dtype != x.dtype:
                raise self.fail(
                    "gradient dtype", f"gradient of input {i} has dtype {g.dtype} but the input is {x.dtype}{suffix}"
                )
            if backend.device_of(g) != x.device:
                raise self.fail(
                    "gradient device",
                    f"gradient of input {i} is on {backend.device_of(g)}, input on {x.device}{suffix}",
                )
            result.grads[i] = backend.to_numpy(g).copy()

    def agree(self, ref: _Pass, other: _Pass, atol: float, rtol: float, scale: bool) -> None:
        """``other`` (computed on a different dtype/layout) agrees with ``ref``."""
        for k, (e, a) in enumerate(zip(ref.outputs, other.outputs)):
            self.compare(f"{other.label} forward", f"output {k}", a, e, atol, rtol, scale)
        for i, e in ref.grads.items():
            a = other.grads.get(i)
            if e is None and a is None:
                continue
            shape = (e if e is not None else a).shape
            e = np.zeros(shape) if e is None else e
            a = np.zeros(shape) if a is None else a
            self.compare(f"{other.label} backward", f"gradient of input {i}", a, e, atol, rtol, scale)


class _Const:
    """Hides a non-differentiable argument from gradcheck (which would otherwise differentiate it)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _cast(value: Any, dtype: Any, contiguous: bool) -> Any:
    """A floating Tensor copied to ``dtype`` (C-contiguous when asked, else keeping its layout)."""
    if isinstance(value, Tensor) and backend.is_floating(value.dtype):
        data = value.data.astype(dtype, order="C" if contiguous else "K", copy=True)
        return Tensor._wrap(data)
    return value


def _diff_indices(inputs: Sequence[Any], grad: bool | Sequence[int]) -> list[int]:
    floating = [i for i, v in enumerate(inputs) if isinstance(v, Tensor) and backend.is_floating(v.dtype)]
    if grad is True:
        return floating
    if grad is False:
        return []
    # optional inputs left as None (e.g. a missing bias) are skipped
    chosen = sorted(int(i) for i in grad if not (0 <= int(i) < len(inputs) and inputs[int(i)] is None))
    for i in chosen:
        if i not in floating:
            raise ValueError(f"check_op: grad names input {i}, which is not a floating-point Tensor")
    return chosen


# ------------------------------------------------------------------ public API


def check_op(
    fn: Callable[..., Any],
    *inputs: Any,
    reference: Callable[..., Any] | None = None,
    grad: bool | Sequence[int] = True,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    eps: float = 1e-6,
    name: str | None = None,
    float32: bool = True,
    allow_mutation: Sequence[int] = (),
) -> None:
    """Check an operator's values, gradients, dtype/device behaviour and purity; raise :class:`OpCheckError`.

    ``fn(*inputs)`` returns a Tensor (or a tuple of them).  ``inputs`` may mix
    Tensors (any dtype, contiguous or not), NumPy arrays and constants; constants
    are passed through unchanged.  ``reference`` is a NumPy function called on
    NumPy copies of the inputs (Tensors become ndarrays) and returns the expected
    output(s).  ``grad`` is True (differentiate every floating Tensor input),
    False, or the indices of the inputs to differentiate (indices of inputs that are
    None, such as an absent bias, are skipped).  ``atol``/``rtol`` apply
    to float64 comparisons and gradcheck (float32 comparisons use at least 1e-4/1e-3),
    ``eps`` is gradcheck's finite-difference step.  ``float32=False`` skips the
    float32 pass; ``allow_mutation`` lists inputs the op may update in place (e.g.
    batch norm's running statistics).  Returns None when every check passes.
    """
    label = _op_name(fn, name)
    if not any(isinstance(v, Tensor) for v in inputs):
        nested = any(isinstance(v, (list, tuple)) and any(isinstance(t, Tensor) for t in v) for v in inputs)
        hint = " (pass tensors as separate arguments: check_op(fn, x, y), not check_op(fn, [x, y]))" if nested else ""
        raise TypeError(f"check_op: no Tensor among the inputs, so nothing would be checked{hint}")
    checker = _Checker(fn, inputs, label)
    inputs_list = list(inputs)
    diff = _diff_indices(inputs_list, grad)
    allow = tuple(int(i) for i in allow_mutation)

    # copies for the later passes, made before the op runs (it may update allowed inputs in place)
    canonical_inputs = [_cast(v, np.float64, contiguous=True) for v in inputs_list]
    f32_inputs = [_cast(v, np.float32, contiguous=False) for v in inputs_list]
    gradcheck_inputs = [_cast(v, np.float64, contiguous=True) for v in inputs_list]

    # 1-4: as given
    given = checker.run(inputs_list, diff, "", allow, backward=True)
    floats = [v for v in inputs_list if isinstance(v, Tensor) and backend.is_floating(v.dtype)]
    dtype = np.result_type(*[v.dtype for v in floats]) if floats else np.dtype(np.float64)
    g_atol, g_rtol = _tolerance(dtype, atol, rtol)
    if reference is not None:
        _check_reference(checker, reference, inputs_list, given, g_atol, g_rtol)

    # 5: contiguous float64 copies agree with the run on the inputs as given
    needs_canonical = any(
        isinstance(v, Tensor)
        and backend.is_floating(v.dtype)
        and (v.dtype != np.float64 or not v.data.flags.c_contiguous)
        for v in inputs_list
    )
    canonical = given
    if needs_canonical:
        canonical = checker.run(canonical_inputs, diff, "contiguous float64 pass", allow, backward=True)
        checker.agree(canonical, _relabel(given, "given-layout"), g_atol, g_rtol, scale=dtype != np.float64)

    # 6: float32 in -> float32 out, float32 gradients, values to float32 precision
    if float32 and floats and dtype == np.float64:
        single = checker.run(f32_inputs, diff, "float32 pass", allow, backward=True)
        a32, r32 = _tolerance(np.float32, atol, rtol)
        checker.agree(canonical, single, a32, r32, scale=True)

    # 7: finite differences
    if diff:
        try:
            _gradcheck(fn, gradcheck_inputs, diff, eps=eps, atol=atol, rtol=rtol)
        except (GradcheckError, ValueError) as error:
            raise checker.fail("float64 gradcheck", str(error)) from None


def _check_reference(
    checker: _Checker, reference: Callable, inputs: list[Any], given: _Pass, atol: float, rtol: float
) -> None:
    """The op's outputs agree with ``reference`` run on host copies of the inputs."""
    host = [
        backend.to_numpy(v.data).copy() if isinstance(v, Tensor) else (v.copy() if isinstance(v, np.ndarray) else v)
        for v in inputs
    ]
    expected = _outputs(reference(*host))
    if len(expected) != len(given.outputs):
        raise checker.fail("value vs reference", f"{len(given.outputs)} outputs but the reference gave {len(expected)}")
    for k, (a, e) in enumerate(zip(given.outputs, expected)):
        checker.compare("value vs reference", f"output {k}", a, np.asarray(e), atol, rtol)


def _relabel(p: _Pass, label: str) -> _Pass:
    return _Pass(label, p.outputs, p.grads)


def assert_grad_close(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    grad: bool | Sequence[int] = True,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    name: str | None = None,
) -> None:
    """:func:`minitorch_nndl.gradcheck.gradcheck` of ``fn`` on ``inputs``, raising :class:`OpCheckError`.

    Only the inputs selected by ``grad`` (default: every floating Tensor) are
    differentiated; the others are passed to ``fn`` unchanged (floating ones as
    float64 copies), and input indices in the message are those of ``inputs``.
    """
    inputs = list(inputs)
    label = _op_name(fn, name)
    try:
        _gradcheck(fn, inputs, _diff_indices(inputs, grad), eps=eps, atol=atol, rtol=rtol)
    except GradcheckError as error:
        raise OpCheckError(f"assert_grad_close({label}): {error}") from None
    except ValueError as error:
        raise OpCheckError(f"assert_grad_close({label}): gradcheck could not run: {error}") from None


def _gradcheck(fn: Callable, inputs: list[Any], diff: Sequence[int], eps: float, atol: float, rtol: float) -> None:
    """gradcheck on the ``diff`` inputs only; the others reach ``fn`` unchanged (floating ones as float64 copies).

    Non-differentiated inputs are hidden in :class:`_Const` so that gradcheck
    passes them through, and input indices in its messages stay those of ``inputs``.
    """
    chosen = set(diff)
    # Contiguous copies: gradcheck perturbs ``x.data.reshape(-1)`` in place, which is a view only for C order.
    prepared = [
        _cast(v, np.float64, contiguous=True) if i in chosen else _Const(_cast(v, np.float64, contiguous=True))
        for i, v in enumerate(inputs)
    ]

    def wrapped(*args: Any) -> Any:
        return fn(*(a.value if isinstance(a, _Const) else a for a in args))

    gradcheck(wrapped, prepared, eps=eps, atol=atol, rtol=rtol)
