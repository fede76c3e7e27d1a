"""Elementwise ops.  Each backward multiplies the incoming gradient by the local derivative
and, for binary ops, sums it back to the input's shape (``unbroadcast``)."""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd import Context, Function
from ..tensor import Tensor
from ._util import check_broadcast, coerce_pair, to_float, unbroadcast

# ------------------------------------------------------------------ conversions


class Cast(Function):
    """y = x as another dtype;  dL/dx = dL/dy cast back to x's dtype."""

    @staticmethod
    def forward(ctx: Context, x: Any, dtype: Any) -> Any:
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return (grad.astype(ctx.dtype),)


class ToDevice(Function):
    """y = x copied to another device;  dL/dx = dL/dy copied back."""

    @staticmethod
    def forward(ctx: Context, x: Any, device: str) -> Any:
        ctx.device = backend.device_of(x)
        return backend.to_device(x, device)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return (backend.to_device(grad, ctx.device),)


# ------------------------------------------------------------------ binary arithmetic


class Add(Function):
    """y = a + b;  dy/da = 1,  dy/db = 1."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.shapes = a.shape, b.shape
        return a + b

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        sa, sb = ctx.shapes
        return unbroadcast(grad, sa), unbroadcast(grad, sb)


class Sub(Function):
    """y = a - b;  dy/da = 1,  dy/db = -1."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.shapes = a.shape, b.shape
        return a - b

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        sa, sb = ctx.shapes
        return unbroadcast(grad, sa), unbroadcast(-grad, sb)


class Mul(Function):
    """y = a * b;  dy/da = b,  dy/db = a."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        a, b = ctx.saved_tensors
        ga = unbroadcast(grad * b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(grad * a, b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """y = a / b;  dy/da = 1/b,  dy/db = -a/b^2 = -y/b."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        a, b = ctx.saved_tensors
        ga = unbroadcast(grad / b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(-grad * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Pow(Function):
    """y = a ** b;  dy/da = b a^(b-1)  (0 where b = 0: y is constant in a, even at a = 0),
    dy/db = y ln a  (taken as 0 where a = 0, as PyTorch does; NaN for a < 0)."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        y = a**b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        a, b, y = ctx.saved_tensors
        xp = backend.xp_of(a)
        ga = None
        if ctx.needs_input_grad[0]:
            # where b = 0, b * a^(b-1) would be 0 * inf = NaN at a = 0; the true derivative is 0,
            # which b * a^1 gives everywhere (the exponent there is arbitrary: b = 0 zeroes it)
            exponent = xp.where(b == 0, b.dtype.type(1), b - b.dtype.type(1))
            ga = unbroadcast(grad * b * a**exponent, a.shape)
        gb = None
        if ctx.needs_input_grad[1]:
            log_a = xp.log(xp.where(a == 0, a.dtype.type(1), a))  # y ln a -> 0 as a -> 0 (b > 0)
            gb = unbroadcast(grad * y * log_a, b.shape)
        return ga, gb


class PowScalar(Function):
    """y = x ** p for a constant p;  dy/dx = p x^(p-1)  (0 for p = 0)."""

    @staticmethod
    def forward(ctx: Context, x: Any, p: float) -> Any:
        ctx.save_for_backward(x)
        ctx.p = p
        return x**p

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (x,) = ctx.saved_tensors
        p = ctx.p
        if p == 0:
            return (backend.xp_of(grad).zeros_like(grad),)
        return (grad * (p * x ** (p - 1)).astype(x.dtype, copy=False),)


def _split_at_ties(grad: Any, a_wins: Any, tie: Any, shapes: tuple) -> tuple[Any, Any]:
    """The gradients of a and b in max/min: all of it to the winner, half to each on a tie."""
    grad_a = backend.xp_of(grad).where(tie, grad * 0.5, grad * a_wins)
    grad_b = grad - grad_a  # exact: grad, 0 or grad/2
    return unbroadcast(grad_a, shapes[0]), unbroadcast(grad_b, shapes[1])


class Maximum(Function):
    """y = max(a, b);  dy/da = 1 where a > b, 0 where a < b, 1/2 where a == b;  dy/db = 1 - dy/da.

    At a tie max is not differentiable; 1/2 is its symmetric derivative
    (max(a + e, a) - max(a - e, a)) / (2e) = 1/2, what a central-difference
    gradcheck measures, and what PyTorch's ``maximum`` uses."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a > b, a == b)
        ctx.shapes = a.shape, b.shape
        return backend.xp_of(a).maximum(a, b)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        a_wins, tie = ctx.saved_tensors
        return _split_at_ties(grad, a_wins, tie, ctx.shapes)


class Minimum(Function):
    """y = min(a, b);  dy/da = 1 where a < b, 0 where a > b, 1/2 where a == b;  dy/db = 1 - dy/da.

    Ties split the gradient in half, as in ``Maximum`` (and PyTorch's ``minimum``)."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a < b, a == b)
        ctx.shapes = a.shape, b.shape
        return backend.xp_of(a).minimum(a, b)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        a_wins, tie = ctx.saved_tensors
        return _split_at_ties(grad, a_wins, tie, ctx.shapes)


class Where(Function):
    """y = cond ? a : b;  dy/da = cond,  dy/db = not cond  (cond is not differentiable)."""

    @staticmethod
    def forward(ctx: Context, cond: Any, a: Any, b: Any) -> Any:
        ctx.save_for_backward(cond)
        ctx.shapes = a.shape, b.shape
        return backend.xp_of(a).where(cond, a, b)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (cond,) = ctx.saved_tensors
        sa, sb = ctx.shapes
        zero = grad.dtype.type(0)
        xp = backend.xp_of(grad)
        return None, unbroadcast(xp.where(cond, grad, zero), sa), unbroadcast(xp.where(cond, zero, grad), sb)


# ------------------------------------------------------------------ unary


class Neg(Function):
    """y = -x;  dy/dx = -1."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        return -x

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return (-grad,)


class Exp(Function):
    """y = e^x;  dy/dx = e^x = y."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        y = backend.xp_of(x).exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (y,) = ctx.saved_tensors
        return (grad * y,)


class Log(Function):
    """y = ln x;  dy/dx = 1/x."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        return backend.xp_of(x).log(x)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (x,) = ctx.saved_tensors
        return (grad / x,)


class Sqrt(Function):
    """y = sqrt(x);  dy/dx = 1 / (2 sqrt(x)) = 1 / (2y)."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        y = backend.xp_of(x).sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (y,) = ctx.saved_tensors
        return (grad / (2 * y),)


class Abs(Function):
    """y = |x|;  dy/dx = sign(x)  (0 at x = 0)."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        xp = backend.xp_of(x)
        ctx.save_for_backward(xp.sign(x))
        return xp.abs(x)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (sign,) = ctx.saved_tensors
        return (grad * sign,)


# ------------------------------------------------------------------ public functions


def _binary(function: type[Function], a: Any, b: Any, name: str) -> Tensor:
    a, b = coerce_pair(a, b, name)
    check_broadcast(a, b, name)
    return function.apply(a, b)


def add(a: Any, b: Any) -> Tensor:
    """a + b with broadcasting."""
    return _binary(Add, a, b, "add")


def sub(a: Any, b: Any) -> Tensor:
    """a - b with broadcasting."""
    return _binary(Sub, a, b, "sub")


def mul(a: Any, b: Any) -> Tensor:
    """a * b with broadcasting."""
    return _binary(Mul, a, b, "mul")


def div(a: Any, b: Any) -> Tensor:
    """a / b with broadcasting; true division, so integer operands give float32."""
    a, b = coerce_pair(a, b, "div")
    if not backend.is_floating(a.dtype):
        a, b = to_float(a), to_float(b)
    check_broadcast(a, b, "div")
    return Div.apply(a, b)


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001
    """a ** b: a constant scalar exponent uses the cheaper PowScalar.

    An integer tensor to a non-negative integer power stays integer; to any other
    power it is computed in float32 (as in PyTorch).
    """
    if isinstance(a, Tensor) and not isinstance(b, Tensor) and backend.np.ndim(b) == 0:
        p = float(b.item() if hasattr(b, "item") else b)
        if not backend.is_floating(a.dtype):
            if p == int(p) and p >= 0:
                return Tensor._wrap(a.data ** int(p))
            a = a.to(dtype=backend.default_float)
        return PowScalar.apply(a, p)
    return _binary(Pow, a, b, "pow")


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise max; the gradient flows to the larger input (half to each on ties, as in PyTorch)."""
    return _binary(Maximum, a, b, "maximum")


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise min; the gradient flows to the smaller input (half to each on ties, as in PyTorch)."""
    return _binary(Minimum, a, b, "minimum")


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """Pick ``a`` where ``cond`` is true, else ``b`` (differentiable in ``a`` and ``b``)."""
    a, b = coerce_pair(a, b, "where")
    if isinstance(cond, Tensor):
        if cond.device != a.device:
            raise RuntimeError(f"where: condition is on {cond.device} but values are on {a.device}")
        cond = cond.data
    cond = backend.asarray(cond, device=a.device).astype(bool, copy=False)
    try:
        backend.np.broadcast_shapes(tuple(cond.shape), a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"where: shapes {tuple(cond.shape)}, {a.shape} and {b.shape} cannot be broadcast together"
        ) from None
    return Where.apply(cond, a, b)


def neg(x: Tensor) -> Tensor:
    return Neg.apply(x)


def exp(x: Tensor) -> Tensor:
    return Exp.apply(to_float(x))


def log(x: Tensor) -> Tensor:
    return Log.apply(to_float(x))


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(to_float(x))


def abs(x: Tensor) -> Tensor:  # noqa: A001
    return Abs.apply(x)


def compare(a: Any, b: Any, how: str) -> Tensor:
    """Elementwise comparison (``how`` is a NumPy ufunc name); a boolean tensor, no gradient."""
    a, b = coerce_pair(a, b, how)
    check_broadcast(a, b, how)
    return Tensor._wrap(getattr(a.xp, how)(a.data, b.data))
