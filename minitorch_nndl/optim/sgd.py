"""Stochastic gradient descent with (Nesterov) momentum and L2 weight decay."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .. import backend
from .optimizer import Optimizer, ParamsT


class SGD(Optimizer):
    r"""Stochastic gradient descent, exactly PyTorch's update rule.

    For each parameter ``p`` with gradient ``g`` (``mu`` = momentum, ``tau`` =
    dampening, ``lambda`` = weight_decay)::

        g <- -g                       if maximize
        g <- g + lambda * p           (L2 weight decay, added to the gradient)
        b <- g                        at the first step (the buffer starts at the gradient)
        b <- mu * b + (1 - tau) * g   afterwards
        d <- g + mu * b               if nesterov, else d <- b
        p <- p - lr * d

    With ``momentum=0`` this is plain ``p <- p - lr * g``.  The momentum buffer is
    ``state[p]["momentum_buffer"]``; parameters whose ``grad`` is None are skipped.

    >>> import minitorch_nndl as mt
    >>> w = mt.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    tensor([ 0.8, -1.6], dtype=float32, requires_grad=True)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "nesterov": nesterov,
            "weight_decay": weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        if group["momentum"] < 0:
            raise ValueError(f"SGD: invalid momentum {group['momentum']} (must be >= 0)")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient (see the class docstring)."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr = float(group["lr"])
            momentum = float(group["momentum"])
            dampening = float(group["dampening"])
            weight_decay = float(group["weight_decay"])
            nesterov = bool(group["nesterov"])
            maximize = bool(group["maximize"])
            hyper = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay}
            hyper |= {"nesterov": nesterov, "maximize": maximize}
            for p, g in self._params_with_grads(group, "SGD.step"):
                buffers = ()
                first = False
                if momentum != 0:
                    state = self.state.setdefault(p, {})
                    first = "momentum_buffer" not in state
                    if first:  # filled with the first gradient (in the parameter's memory layout)
                        state["momentum_buffer"] = backend.xp_of(p.data).empty_like(p.data)
                    buffers = (state["momentum_buffer"],)
                self._blockwise(functools.partial(sgd_update, first=first, **hyper), p.data, g, *buffers)
        return loss


def sgd_update(
    p: Any,
    g: Any,
    *buffers: Any,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first: bool,
) -> None:
    """SGD's rule (see :class:`SGD`) on arrays, in place: the parameter ``p``, its gradient ``g``
    and, with momentum, its buffer (``first``: the buffer starts at this gradient)."""
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    if buffers:
        (buf,) = buffers
        if first:
            buf[...] = g
        else:
            buf *= momentum
            buf += g if dampening == 0 else (1.0 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    p -= lr * g
