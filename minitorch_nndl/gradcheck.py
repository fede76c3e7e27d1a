"""Finite-difference gradient checking, for our own ops and for the ones you write.

``gradcheck(fn, inputs)`` compares the gradient that autograd computes with
central differences  (f(x + eps) - f(x - eps)) / (2 eps)  in float64.  To check
every output element at once it differentiates the scalar  sum(fn(x) * r)  for
a fixed random ``r``, whose gradient involves every entry of the Jacobian.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import backend
from .grad_mode import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree; the message says where and by how much."""


def _as_output_list(out: Any) -> list[Tensor]:
    if isinstance(out, Tensor):
        return [out]
    return [o for o in out if isinstance(o, Tensor)]


def _scalar_objective(fn: Callable, inputs: Sequence[Tensor], weights: list[Any] | None) -> tuple[Tensor, list[Any]]:
    outs = _as_output_list(fn(*inputs))
    if weights is None:
        rng = np.random.default_rng(1234)
        weights = [backend.asarray(rng.standard_normal(o.shape), dtype=o.dtype, device=o.device) for o in outs]
    total = None
    for o, w in zip(outs, weights):
        if not backend.is_floating(o.dtype):
            continue
        term = (o * Tensor._wrap(w)).sum()
        total = term if total is None else total + term
    return total, weights


def numerical_grad(fn: Callable, inputs: Sequence[Tensor], index: int, eps: float = 1e-6, weights: Any = None) -> Any:
    """Central-difference gradient of sum(fn(*inputs) * weights) with respect to ``inputs[index]``."""
    x = inputs[index]
    flat = x.data.reshape(-1)  # a view: inputs are made contiguous by gradcheck
    grad = np.zeros(flat.shape, dtype=np.float64)
    with no_grad():
        for i in range(flat.size):
            original = flat[i].item()
            flat[i] = original + eps
            plus = _scalar_objective(fn, inputs, weights)[0].item()
            flat[i] = original - eps
            minus = _scalar_objective(fn, inputs, weights)[0].item()
            flat[i] = original
            grad[i] = (plus - minus) / (2 * eps)
    return grad.reshape(x.shape)


def gradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    raise_exception: bool = True,
) -> bool:
    """Check autograd's gradients of ``fn`` against central finite differences, in float64.

    ``inputs`` are Tensors (or arrays); floating ones are copied to float64 and
    checked, the rest are passed through.  On a mismatch it raises
    :class:`GradcheckError` naming the input, the worst element's index, both
    values and the error (or returns False when ``raise_exception=False``).

    >>> import minitorch_nndl as mt
    >>> gradcheck(lambda x: (x * x).sum(), [mt.randn(3, 2)])
    True
    """
    prepared: list[Any] = []
    checked: list[int] = []
    for i, value in enumerate(inputs):
        if not isinstance(value, Tensor):
            value = Tensor(value) if hasattr(value, "shape") else value
        if isinstance(value, Tensor) and backend.is_floating(value.dtype):
            data = value.xp.array(
                value.data, dtype=backend.float64, copy=True, order="C"
            )  # contiguous, so perturbing .reshape(-1) perturbs it
            value = Tensor._wrap(data, requires_grad=True)
            checked.append(i)
        prepared.append(value)
    if not checked:
        raise ValueError("gradcheck: no floating-point tensor among the inputs")

    objective, weights = _scalar_objective(fn, prepared, None)
    if objective is None or not objective.requires_grad:
        raise GradcheckError("gradcheck: the output does not depend differentiably on any input")
    objective.backward()

    for i in checked:
        x = prepared[i]
        analytic = np.zeros(x.shape) if x.grad is None else backend.to_numpy(x.grad).astype(np.float64)
        numeric = numerical_grad(fn, prepared, i, eps, weights)
        if analytic.shape != numeric.shape:
            message = f"gradcheck failed for input {i}: gradient shape {analytic.shape} != input shape {numeric.shape}"
            if raise_exception:
                raise GradcheckError(message)
            return False
        error = np.abs(analytic - numeric)
        allowed = atol + rtol * np.abs(numeric)
        if not np.all(error <= allowed):
            worst = np.unravel_index(int(np.argmax(error - allowed)), error.shape) if error.size else ()
            message = (
                f"gradcheck failed for input {i} (shape {x.shape}) at index {tuple(int(k) for k in worst)}: "
                f"analytic {analytic[worst]:.8g}, numerical {numeric[worst]:.8g}, "
                f"error {error[worst]:.3g} > allowed {allowed[worst]:.3g} (atol={atol}, rtol={rtol}); "
                f"{int((error > allowed).sum())} of {error.size} elements disagree"
            )
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True
