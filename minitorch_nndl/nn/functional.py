"""``nn.functional`` (import as ``F``): the stateless ops behind the layers.

A layer (``nn.Conv2d``) owns its parameters and calls a function from here
(``F.conv2d(x, self.weight, self.bias, ...)``).  Use the functions directly when
you manage the tensors yourself.  Most are re-exported from
:mod:`minitorch_nndl.ops`; ``linear`` and ``flatten`` are defined here.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd import Context, Function
from ..ops.conv import conv2d
from ..ops.dropout import dropout
from ..ops.elementwise import leaky_relu, relu, sigmoid, tanh
from ..ops.loss import cross_entropy, mse_loss, nll_loss
from ..ops.norm import batch_norm
from ..ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from ..ops.reduce import log_softmax, softmax
from ..ops.shape import flatten as _flatten
from ..tensor import Tensor


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
        gb = g2.sum(axis=0) if len(needs) > 2 and needs[2] else None
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
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)


def flatten(x: Tensor, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim..end_dim`` (default: everything but the batch axis)."""
    return _flatten(x, start_dim, end_dim)


__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "cross_entropy",
    "dropout",
    "flatten",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]
