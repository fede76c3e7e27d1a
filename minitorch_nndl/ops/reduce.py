"""Reductions and the softmax family.  The backward of a reduction broadcasts the
incoming gradient back over the axes that were reduced."""

from __future__ import annotations

from typing import Any

from .. import backend
from .._aliases import accepts_torch_names
from ..autograd import Context, Function
from ..tensor import Tensor
from ._util import normalize_axes, to_float


def _expand_reduced(grad: Any, shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool) -> Any:
    """Re-insert the reduced axes (size 1) so ``grad`` broadcasts against the input."""
    if not keepdims:
        grad = grad.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    return grad


class Sum(Function):
    """y = sum_i x_i over ``axes``;  dy/dx_i = 1, so dL/dx = dL/dy broadcast back."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return x.sum(axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        g = _expand_reduced(grad, ctx.shape, ctx.axes, ctx.keepdims)
        return backend.xp_of(grad).broadcast_to(g, ctx.shape), None, None


class Mean(Function):
    """y = (1/n) sum_i x_i;  dL/dx = dL/dy / n broadcast back (n = number of reduced elements)."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return x.mean(axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        n = 1
        for a in ctx.axes:
            n *= ctx.shape[a]
        g = _expand_reduced(grad, ctx.shape, ctx.axes, ctx.keepdims) / grad.dtype.type(n or 1)
        return backend.xp_of(grad).broadcast_to(g, ctx.shape), None, None


class Var(Function):
    """y = sum_i (x_i - mean)^2 / (n - c);  dy/dx_i = 2 (x_i - mean) / (n - c)."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...], keepdims: bool, correction: int) -> Any:
        centered = x - x.mean(axis=axes, keepdims=True)
        n = 1
        for a in axes:
            n *= x.shape[a]
        ctx.save_for_backward(centered)
        ctx.axes, ctx.keepdims, ctx.denominator = axes, keepdims, n - correction
        return (centered * centered).sum(axis=axes, keepdims=keepdims) / x.dtype.type(ctx.denominator)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (centered,) = ctx.saved_tensors
        g = _expand_reduced(grad, centered.shape, ctx.axes, ctx.keepdims)
        return g * centered * grad.dtype.type(2.0 / ctx.denominator), None, None, None


class Max(Function):
    """y = max_i x_i;  dy/dx_i = 1 at the maximum.  Ties share the gradient equally,
    so the gradient is the same whichever of the tied entries a subgradient would pick."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
        y = x.max(axis=axes, keepdims=True)
        if ctx.needs_input_grad:  # the tie-sharing mask is only needed for backward
            mask = (x == y).astype(x.dtype)
            ctx.save_for_backward(mask / mask.sum(axis=axes, keepdims=True))
        ctx.axes, ctx.keepdims = axes, keepdims
        return y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (share,) = ctx.saved_tensors
        return _expand_reduced(grad, share.shape, ctx.axes, ctx.keepdims) * share, None, None


class Min(Function):
    """y = min_i x_i;  dy/dx_i = 1 at the minimum (ties share it equally)."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
        y = x.min(axis=axes, keepdims=True)
        if ctx.needs_input_grad:
            mask = (x == y).astype(x.dtype)
            ctx.save_for_backward(mask / mask.sum(axis=axes, keepdims=True))
        ctx.axes, ctx.keepdims = axes, keepdims
        return y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])

    backward = Max.backward


class LogSumExp(Function):
    """y = log sum_i e^{x_i} = m + log sum_i e^{x_i - m} (m = max, for stability);
    dy/dx_i = softmax(x)_i."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
        xp = backend.xp_of(x)
        m = x.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, m.dtype.type(0))  # all -inf (or inf) along an axis: no shift
        e = xp.exp(x - m)
        s = e.sum(axis=axes, keepdims=True)
        ctx.save_for_backward(e / s)
        ctx.axes, ctx.keepdims = axes, keepdims
        y = xp.log(s) + m
        return y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (p,) = ctx.saved_tensors
        return _expand_reduced(grad, p.shape, ctx.axes, ctx.keepdims) * p, None, None


class Softmax(Function):
    """p_i = e^{x_i} / sum_j e^{x_j};  dL/dx = p * (g - sum_j g_j p_j)."""

    @staticmethod
    def forward(ctx: Context, x: Any, axis: int) -> Any:
        xp = backend.xp_of(x)
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        p = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(p)
        ctx.axis = axis
        return p

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (p,) = ctx.saved_tensors
        return p * (grad - (grad * p).sum(axis=ctx.axis, keepdims=True)), None


class LogSoftmax(Function):
    """y_i = x_i - logsumexp(x);  dL/dx = g - softmax(x) * sum_j g_j."""

    @staticmethod
    def forward(ctx: Context, x: Any, axis: int) -> Any:
        xp = backend.xp_of(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (y,) = ctx.saved_tensors
        xp = backend.xp_of(y)
        return grad - xp.exp(y) * grad.sum(axis=ctx.axis, keepdims=True), None


# ------------------------------------------------------------------ public functions


def _reduce(function: type[Function], x: Tensor, axis: Any, keepdims: bool, *extra: Any) -> Tensor:
    axes = normalize_axes(axis, x.ndim)
    return function.apply(x, axes, keepdims, *extra)


@accepts_torch_names
def sum(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (None = all, int, or tuple)."""
    return _reduce(Sum, x, axis, keepdims)


@accepts_torch_names
def mean(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``; an integer tensor gives a float32 mean."""
    return _reduce(Mean, to_float(x), axis, keepdims)


@accepts_torch_names
def var(x: Tensor, axis: Any = None, keepdims: bool = False, correction: int = 0) -> Tensor:
    """Variance over ``axis``, dividing by n - correction (0: biased, 1: unbiased)."""
    return _reduce(Var, to_float(x), axis, keepdims, correction)


@accepts_torch_names
def max(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis``; tied maxima share the gradient equally."""
    if x.data.size == 0:
        raise ValueError(f"max: cannot reduce an empty tensor of shape {x.shape}")
    return _reduce(Max, x, axis, keepdims)


@accepts_torch_names
def min(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Minimum over ``axis``; tied minima share the gradient equally."""
    if x.data.size == 0:
        raise ValueError(f"min: cannot reduce an empty tensor of shape {x.shape}")
    return _reduce(Min, x, axis, keepdims)


@accepts_torch_names
def logsumexp(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) computed stably (no overflow for logits of 1e4)."""
    return _reduce(LogSumExp, to_float(x), axis, keepdims)


def _softmax_axis(axis: int, ndim: int) -> int | None:
    """One normalized axis (None for a 0-d tensor, whose softmax is 1)."""
    axes = normalize_axes(axis, ndim)
    if len(axes) != 1 and ndim:
        raise ValueError(f"softmax: axis must be a single int, got {axis!r}")
    return axes[0] if axes else None


@accepts_torch_names
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, computed stably."""
    return Softmax.apply(to_float(x), _softmax_axis(axis, x.ndim))


@accepts_torch_names
def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along ``axis``, computed stably."""
    return LogSoftmax.apply(to_float(x), _softmax_axis(axis, x.ndim))


@accepts_torch_names
def argmax(x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the maximum (first one on ties); an int64 tensor, not differentiable."""
    out = x.xp.argmax(x.data, axis=axis)
    if keepdims and axis is not None:
        out = x.xp.expand_dims(out, axis)
    return Tensor._wrap(out.astype(backend.int64, copy=False))


@accepts_torch_names
def argmin(x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the minimum (first one on ties); an int64 tensor, not differentiable."""
    out = x.xp.argmin(x.data, axis=axis)
    if keepdims and axis is not None:
        out = x.xp.expand_dims(out, axis)
    return Tensor._wrap(out.astype(backend.int64, copy=False))
