"""Our answers to the exercises: the library's own ops and optimizers, in the exercises' shapes.

Most exercises are one of the library's ``Function`` classes (``Mul``, ``Conv2d``, ...),
graded with the same forward signature the stubs have.  Two have no class of their own
in the library and get a thin one here: ``Im2col`` (im2col as an op, with col2im as its
backward, from :mod:`minitorch_nndl.kernels.arrays`), and the optimizer steps, written
as pure functions around ``optim.SGD`` and ``optim.Adam``.  The grader compares a
student's answer with these, and ``check --all --solutions`` grades these themselves.
"""

from __future__ import annotations

import importlib
from typing import Any

from .. import optim
from ..autograd import Context, Function
from ..kernels import arrays
from ..tensor import Tensor

__all__ = ["Im2col", "adam_step", "sgd_momentum_step", "solution"]


class Im2col(Function):
    """cols = im2col(x) (C*KH*KW, N*OH*OW);  dL/dx = col2im(dL/dcols), its adjoint."""

    @staticmethod
    def forward(ctx: Context, x: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any) -> Any:
        ctx.geometry = x.shape, kernel_size, stride, padding, dilation
        return arrays.im2col(x, kernel_size, stride, padding, dilation)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        return (arrays.col2im(grad, *ctx.geometry),)


def _one_step(optimizer: type[optim.Optimizer], param: Any, grad: Any, state: dict, **hyper: Any) -> tuple:
    """``optimizer``'s step on one parameter array, starting from ``state``; (new_param, new_state)."""
    p = Tensor._wrap(param.copy(), requires_grad=True)
    p.grad = grad.copy()
    opt = optimizer([p], **hyper)
    if state:
        opt.state[p] = {k: v.copy() if hasattr(v, "copy") else v for k, v in state.items()}
    opt.step()
    return p.data, opt.state[p]


def sgd_momentum_step(param: Any, grad: Any, buf: Any, lr: float, momentum: float, weight_decay: float) -> tuple:
    """One ``optim.SGD`` step with momentum; returns (new_param, new_buf)."""
    state = {} if buf is None else {"momentum_buffer": buf}
    p, state = _one_step(optim.SGD, param, grad, state, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return p, state["momentum_buffer"]


def adam_step(
    param: Any,
    grad: Any,
    m: Any,
    v: Any,
    t: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> tuple:
    """One ``optim.Adam`` step at step number ``t`` (from 1); returns (new_param, new_m, new_v)."""
    state = {"step": t - 1, "exp_avg": m, "exp_avg_sq": v}
    hyper = {"lr": lr, "betas": (beta1, beta2), "eps": eps, "weight_decay": weight_decay}
    p, state = _one_step(optim.Adam, param, grad, state, **hyper)
    return p, state["exp_avg"], state["exp_avg_sq"]


# exercise -> where its answer lives: "module:attribute" (modules relative to minitorch_nndl)
_WHERE = {
    "unbroadcast": "ops.shape:BroadcastTo",
    "mul": "ops.elementwise:Mul",
    "div": "ops.elementwise:Div",
    "pow": "ops.elementwise:Pow",
    "exp": "ops.elementwise:Exp",
    "log": "ops.elementwise:Log",
    "sum": "ops.reduce:Sum",
    "mean": "ops.reduce:Mean",
    "matmul": "ops.matmul:MatMul",
    "relu": "ops.activation:ReLU",
    "softmax": "ops.reduce:Softmax",
    "log_softmax": "ops.reduce:LogSoftmax",
    "cross_entropy": "ops.loss:CrossEntropy",
    "im2col": "exercises.solutions:Im2col",
    "conv2d": "ops.conv:Conv2d",
    "max_pool2d": "ops.pool:MaxPool2d",
    "batch_norm": "ops.norm:BatchNorm",
    "sgd_momentum": "exercises.solutions:sgd_momentum_step",
    "adam": "exercises.solutions:adam_step",
}


def solution(name: str) -> Any:
    """Our answer to exercise ``name``: a Function subclass, or a step function for the optimizers."""
    module, _, attribute = _WHERE[name].partition(":")
    return getattr(importlib.import_module(f"minitorch_nndl.{module}"), attribute)
