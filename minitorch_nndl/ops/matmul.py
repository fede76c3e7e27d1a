"""Matrix multiplication, batched and broadcasting like ``numpy.matmul``, and the linear layer's op."""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd import Context, Function
from ..tensor import Tensor
from ._util import coerce_pair, unbroadcast


class MatMul(Function):
    """Y = A B;  dL/dA = dL/dY B^T,  dL/dB = A^T dL/dY  (batch axes summed back when broadcast)."""

    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        a, b = ctx.saved_tensors
        xp = backend.xp_of(grad)
        # Vectors are promoted to matrices (as matmul does) so one rule covers every case.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = g2 @ xp.swapaxes(b2, -1, -2)
            ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = xp.swapaxes(a2, -1, -2) @ g2
            gb = unbroadcast(gb, b2.shape).reshape(b.shape)
        return ga, gb


def matmul(a: Any, b: Any) -> Tensor:
    """``a @ b``: vectors, matrices, and stacks of matrices with broadcast batch axes."""
    a, b = coerce_pair(a, b, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {a.shape} and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[-2] if b.ndim >= 2 else b.shape[0]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned ({k_a} != {k_b})")
    try:
        backend.np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} cannot be broadcast") from None
    return MatMul.apply(a, b)


class Linear(Function):
    """y = x W^T + b  (x: (..., in), W: (out, in), b: (out,));
    dL/dx = g W,  dL/dW = g^T x  (summed over all leading axes),  dL/db = sum of g over leading axes."""

    @staticmethod
    def forward(ctx: Context, x: Any, weight: Any, bias: Any = None) -> Any:
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])
        y = x2 @ weight.T
        if bias is not None:
            y += bias
        ctx.save_for_backward(x2, weight)
        ctx.x_shape = x.shape
        return y.reshape(*lead, weight.shape[0])

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        x2, weight = ctx.saved_tensors
        g2 = grad.reshape(-1, weight.shape[0])
        needs = ctx.needs_input_grad
        gx = (g2 @ weight).reshape(ctx.x_shape) if needs[0] else None
        gw = g2.T @ x2 if needs[1] else None
        gb = g2.sum(axis=0) if needs[2] else None
        return gx, gw, gb


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` over the last axis of ``x`` (any number of leading axes)."""
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        raise TypeError("linear: x and weight must be Tensors")
    if x.ndim < 1 or weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not match weight of shape {weight.shape} "
            f"(expected input (..., {weight.shape[1] if weight.ndim == 2 else '?'}))"
        )
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != weight.shape[0]):
        raise ValueError(f"linear: bias of shape {bias.shape} does not match weight of shape {weight.shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(
                f"linear: input dtype {x.dtype} differs from {name} dtype {t.dtype}; "
                f"cast one of them (x.to(dtype=...) or module.to(dtype))"
            )
    if not backend.is_floating(x.dtype):
        raise TypeError(f"linear: expected a floating-point input, got dtype {x.dtype}")
    return Linear.apply(x, weight, bias)
