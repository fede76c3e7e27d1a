"""Activation functions: the nonlinearities between layers (tanh, sigmoid, ReLU, leaky ReLU)
and clamp.  Each backward multiplies the incoming gradient by the local derivative, saving
the cheapest thing that gives it (the output, or a boolean mask)."""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd import Context, Function
from ..kernels.arrays import relu_into
from ..tensor import Tensor
from ._util import by_batch_ranges, to_float


class Tanh(Function):
    """y = tanh x;  dy/dx = 1 - y^2."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        y = backend.xp_of(x).tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (y,) = ctx.saved_tensors
        return (grad * (1 - y * y),)


class Sigmoid(Function):
    """y = 1 / (1 + e^-x);  dy/dx = y (1 - y).  Computed as (1 + tanh(x/2)) / 2, which never overflows."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        xp = backend.xp_of(x)
        y = (xp.tanh(x * x.dtype.type(0.5)) + 1) * x.dtype.type(0.5)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (y,) = ctx.saved_tensors
        return (grad * y * (1 - y),)


class ReLU(Function):
    """y = max(x, 0);  dy/dx = 1 where x > 0, else 0.

    x > 0 exactly where y > 0, so the backward reads the mask off the output: the op that
    consumes y keeps it alive anyway, and saving it costs no memory (a mask would)."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        xp = backend.xp_of(x)
        y = xp.empty_like(x)  # not x * (x > 0): -inf * 0 is NaN
        by_batch_ranges(lambda out, a: relu_into(a, out), y, x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (y,) = ctx.saved_tensors
        xp = backend.xp_of(grad)
        dx = xp.empty_like(y)

        def masked(out: Any, g: Any, y_part: Any) -> None:  # the mask as 0/1 floats, then times g
            xp.greater(y_part, 0, out=out)  # (faster than g * mask, which casts booleans)
            out *= g

        by_batch_ranges(masked, dx, grad, y)
        return (dx,)


class LeakyReLU(Function):
    """y = x if x > 0 else a x;  dy/dx = 1 if x > 0 else a."""

    @staticmethod
    def forward(ctx: Context, x: Any, negative_slope: float) -> Any:
        xp = backend.xp_of(x)
        slope = xp.where(x > 0, x.dtype.type(1), x.dtype.type(negative_slope))
        ctx.save_for_backward(slope)
        return x * slope

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (slope,) = ctx.saved_tensors
        return grad * slope, None


class Clamp(Function):
    """y = min(max(x, lo), hi);  dy/dx = 1 where lo <= x <= hi, else 0."""

    @staticmethod
    def forward(ctx: Context, x: Any, lo: float | None, hi: float | None) -> Any:
        xp = backend.xp_of(x)
        inside = xp.ones(x.shape, dtype=bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        ctx.save_for_backward(inside)
        y = x
        if lo is not None:  # maximum/minimum rather than clip: CuPy's clip wants both bounds
            y = xp.maximum(y, lo)
        if hi is not None:
            y = xp.minimum(y, hi)
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None


# ------------------------------------------------------------------ public functions


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(to_float(x))


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(to_float(x))


def relu(x: Tensor) -> Tensor:
    return ReLU.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU.apply(to_float(x), negative_slope)


def clamp(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    """Limit values to [min, max]; either bound may be None."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return Clamp.apply(x, min, max)
