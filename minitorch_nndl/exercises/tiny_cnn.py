"""The end-to-end check: a few training steps of a tiny CNN, with the student's op in it and with ours.

The network is written with one ``Function`` per exercise, each called through a slot
(``ops["mul"](h, scale)``), so any one exercise's answer can stand in for ours while
everything else stays the same:

    conv2d 3x3 -> batch_norm (training) -> relu -> max_pool2d 2x2 -> flatten
    -> mul (a per-feature scale, broadcast) -> log(1 + exp(.)) -> div by pow(base, power)
    -> matmul + broadcast_to(bias) -> cross_entropy (label smoothing 0.1)
       + 0.01 * mean(sum(softmax * log_softmax))  (a confidence penalty)

:func:`train` runs a few steps of SGD with momentum or Adam (ours, or a student's step
function) in float64 and records every loss and the parameters after every step; the grader runs it
twice and compares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import optim
from ..tensor import Tensor
from .solutions import solution

__all__ = ["OPS", "Trajectory", "conv_from_im2col", "loss_of", "our_ops", "train"]

# the slots, by exercise name; "im2col" stands in for the whole conv2d slot (see conv_from_im2col)
OPS = (
    "unbroadcast",
    "mul",
    "div",
    "pow",
    "exp",
    "log",
    "sum",
    "mean",
    "matmul",
    "relu",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "conv2d",
    "max_pool2d",
    "batch_norm",
)
BATCH, CLASSES, STEPS = 4, 3, 3


def our_ops() -> dict[str, Callable[..., Tensor]]:
    """Every slot filled with the library's own Function."""
    return {name: solution(name).apply for name in OPS}


def conv_from_im2col(im2col: type) -> Callable[..., Tensor]:
    """A conv2d slot built from an ``Im2col`` Function and library matmul: W_mat @ cols, reshaped."""

    def conv2d(
        x: Tensor, weight: Tensor, bias: Tensor, stride: Any, padding: Any, dilation: Any, groups: int
    ) -> Tensor:
        N, C_out = x.shape[0], weight.shape[0]
        KH, KW = weight.shape[2:]
        cols = im2col.apply(x, (KH, KW), stride, padding, dilation)
        OH = (x.shape[2] + 2 * padding[0] - dilation[0] * (KH - 1) - 1) // stride[0] + 1
        OW = cols.shape[1] // (N * OH)
        y = (weight.reshape(C_out, -1) @ cols).reshape(C_out, N, OH, OW).permute(1, 0, 2, 3)
        return y + bias.reshape(1, C_out, 1, 1)

    return conv2d


def _data_and_params() -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    rng = np.random.default_rng(0)
    x = Tensor._wrap(rng.standard_normal((BATCH, 1, 6, 6)))
    y = Tensor._wrap(np.array([0, 1, 2, 1], dtype=np.int64))
    shapes_and_scales = {
        "conv_weight": ((3, 1, 3, 3), 0.5),
        "conv_bias": ((3,), 0.1),
        "bn_gamma": ((3,), 0.1),
        "bn_beta": ((3,), 0.1),
        "scale": ((27,), 0.2),
        "base": ((27,), 0.1),
        "power": ((1,), 0.1),
        "fc_weight": ((27, CLASSES), 0.3),
        "fc_bias": ((CLASSES,), 0.1),
    }
    offsets = {"bn_gamma": 1.0, "scale": 1.0, "base": 1.5, "power": 0.5}
    params = {
        name: Tensor._wrap(offsets.get(name, 0.0) + scale * rng.standard_normal(shape), requires_grad=True)
        for name, (shape, scale) in shapes_and_scales.items()
    }
    return x, y, params


def loss_of(ops: dict[str, Callable[..., Tensor]], x: Tensor, y: Tensor, p: dict[str, Tensor]) -> Tensor:
    """The tiny CNN's training loss, every op taken from ``ops``."""
    z = ops["conv2d"](x, p["conv_weight"], p["conv_bias"], (1, 1), (1, 1), (1, 1), 1)  # (4, 3, 6, 6)
    z = ops["batch_norm"](z, p["bn_gamma"], p["bn_beta"], None, None, True, False, 0.1, 1e-5)
    z = ops["max_pool2d"](ops["relu"](z), (2, 2), (2, 2), (0, 0), (3, 3))  # (4, 3, 3, 3)
    h = ops["mul"](z.reshape(BATCH, 27), p["scale"])
    h = ops["log"](ops["exp"](h) + 1.0)
    h = ops["div"](h, ops["pow"](p["base"], p["power"]))
    logits = ops["matmul"](h, p["fc_weight"]) + ops["unbroadcast"](p["fc_bias"], (BATCH, CLASSES))
    loss = ops["cross_entropy"](logits, y, "mean", 0.1)
    confidence = ops["sum"](ops["softmax"](logits, 1) * ops["log_softmax"](logits, 1), (1,), False)
    return loss + 0.01 * ops["mean"](confidence, (0,), False)


class Trajectory:
    """The losses of every step and the parameters after every step of one training run."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.params: list[dict[str, np.ndarray]] = []


SGD_SETTINGS = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}
ADAM_SETTINGS = {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 5e-4}


def _our_optimizer(kind: str, params: list[Tensor]) -> Callable[[], Any]:
    if kind == "adam":
        s = ADAM_SETTINGS
        betas = (s["beta1"], s["beta2"])
        opt = optim.Adam(params, lr=s["lr"], betas=betas, eps=s["eps"], weight_decay=s["weight_decay"])
    else:
        opt = optim.SGD(params, **SGD_SETTINGS)
    return opt.step


def _function_optimizer(kind: str, step_fn: Callable, params: list[Tensor]) -> Callable[[], None]:
    """A student's step function (sgd_momentum_step or adam_step) applied to every parameter."""
    state: dict[int, list] = {}

    def sgd_step() -> None:
        for p in params:
            buf = state.get(id(p))
            p.data, state[id(p)] = step_fn(p.data.copy(), p.grad.copy(), buf, **SGD_SETTINGS)

    def adam_step() -> None:
        for p in params:
            t, m, v = state.get(id(p), (0, np.zeros_like(p.data), np.zeros_like(p.data)))
            p.data, m, v = step_fn(p.data.copy(), p.grad.copy(), m, v, t + 1, **ADAM_SETTINGS)
            state[id(p)] = [t + 1, m, v]

    return adam_step if kind == "adam" else sgd_step


def train(
    ops: dict[str, Callable[..., Tensor]] | None = None, optimizer: str = "sgd", step_fn: Callable | None = None
) -> Trajectory:
    """``STEPS`` training steps of the tiny CNN in float64; every loss and the parameters after every step.

    ``ops`` defaults to ours; ``optimizer`` is "sgd" (with momentum) or "adam", ours unless
    ``step_fn`` (a student's ``sgd_momentum_step`` or ``adam_step``) is given.
    """
    ops = our_ops() if ops is None else ops
    x, y, params = _data_and_params()
    tensors = list(params.values())
    step = _our_optimizer(optimizer, tensors) if step_fn is None else _function_optimizer(optimizer, step_fn, tensors)
    run = Trajectory()
    for _ in range(STEPS):
        for p in tensors:
            p.grad = None
        loss = loss_of(ops, x, y, params)
        loss.backward()
        run.losses.append(float(loss.item()))
        step()
        run.params.append({name: np.array(p.data) for name, p in params.items()})
    return run
