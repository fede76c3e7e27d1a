"""Write your own differentiable op and test it like the built-in ones.

Run:  python examples/custom_op.py

1. ``Softplus`` is a new op:  y = log(1 + e^x),  dy/dx = sigmoid(x).
2. ``check_op`` checks it on Hypothesis-drawn tensors (0-d to 3-d, contiguous and
   not): values against NumPy, float64 gradcheck, no input mutation, float32 in ->
   float32 out.
3. ``BrokenSoftplus`` has a wrong backward (it forgot the minus sign in e^-x), and
   the report says exactly where the gradient is wrong.

Needs Hypothesis (``pip install hypothesis`` or the ``dev`` extra).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings

import minitorch_nndl as mt
from minitorch_nndl import backend
from minitorch_nndl.autograd import Context, Function
from minitorch_nndl.testing import OpCheckError, check_op
from minitorch_nndl.testing.strategies import shapes, tensors


class Softplus(Function):
    """y = log(1 + e^x);  dy/dx = e^x / (1 + e^x) = sigmoid(x).

    Computed as  max(x, 0) + log1p(e^{-|x|}),  which never overflows.
    """

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        xp = backend.xp_of(x)
        ctx.save_for_backward(x)
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (x,) = ctx.saved_tensors
        xp = backend.xp_of(x)
        half = x.dtype.type(0.5)
        sigmoid = (xp.tanh(x * half) + 1) * half  # stable sigmoid, keeps x's dtype
        return (grad * sigmoid,)


class BrokenSoftplus(Softplus):
    """The same forward, with a wrong backward: 1 / (1 + e^x) = sigmoid(-x) instead of sigmoid(x)."""

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (x,) = ctx.saved_tensors
        xp = backend.xp_of(x)
        return (grad / (1 + xp.exp(x)),)


def softplus(x: mt.Tensor) -> mt.Tensor:
    return Softplus.apply(x)


def reference_softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(tensors(shapes(max_dims=3, max_side=4)))
def test_softplus(x: mt.Tensor) -> None:
    check_op(softplus, x, reference=reference_softplus, name="softplus")


def main() -> None:
    test_softplus()
    print("Softplus passed check_op on 25 drawn inputs (values, float64 gradcheck, no mutation, float32 pass).")

    x = mt.tensor([[-1.0, 0.5, 2.0]], dtype=mt.float64)
    try:
        check_op(BrokenSoftplus.apply, x, reference=reference_softplus, name="broken_softplus")
    except OpCheckError as report:
        print("BrokenSoftplus was caught, as it should be. The report:")
        print(report)
    else:  # pragma: no cover - would mean check_op missed a wrong gradient
        raise SystemExit("check_op did not catch BrokenSoftplus")


if __name__ == "__main__":
    main()
