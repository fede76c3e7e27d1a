"""Adam and AdamW: per-coordinate step sizes from running gradient moments."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from .. import backend
from .optimizer import Optimizer, ParamsT


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), exactly PyTorch's update rule.

    At step ``t = 1, 2, ...`` with gradient ``g``::

        g   <- g + weight_decay * p             (L2 penalty in the gradient; AdamW decays p instead)
        m   <- beta1 * m + (1 - beta1) * g      first moment  (state "exp_avg", starts at 0)
        v   <- beta2 * v + (1 - beta2) * g**2   second moment (state "exp_avg_sq", starts at 0)
        v_max <- max(v_max, v)                  only with amsgrad (state "max_exp_avg_sq")
        p   <- p - lr / (1 - beta1**t) * m / (sqrt(v or v_max) / sqrt(1 - beta2**t) + eps)

    The divisions by ``1 - beta**t`` are the *bias correction*: m and v start at
    zero, so without them the first steps would be far too small.  With them the
    first step is ``m/sqrt(v) = g/|g|``, i.e. every coordinate moves by about
    ``lr * sign(g)`` whatever the gradient's scale.

    Args:
        params: Tensors or parameter groups.
        lr: step size (default 1e-3).
        betas: decay rates ``(beta1, beta2)`` of the two moment averages.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 coefficient added to the gradient (coupled decay); None means the
            class's default (0 for Adam, 1e-2 for AdamW).
        amsgrad: use the running maximum of ``v`` (Reddi et al., 2018).
        maximize: ascend the objective instead of descending.
    """

    _decoupled = False
    default_weight_decay = 0.0

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | None = None,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": self.default_weight_decay if weight_decay is None else weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        name = type(self).__name__
        betas = group["betas"]
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = tuple(betas)
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name}: invalid beta parameter at index {i}: {beta} (must be in [0, 1))")
        if group["eps"] < 0:
            raise ValueError(f"{name}: invalid epsilon value {group['eps']} (must be >= 0)")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Adam update of every parameter that has a gradient (see the class docstring)."""
        loss = closure() if closure is not None else None
        opname = f"{type(self).__name__}.step"
        for group in self.param_groups:
            lr = float(group["lr"])
            beta1, beta2 = (float(b) for b in group["betas"])
            eps = float(group["eps"])
            weight_decay = float(group["weight_decay"])
            amsgrad = bool(group["amsgrad"])
            maximize = bool(group["maximize"])
            for p, g in self._params_with_grads(group, opname):
                xp = backend.xp_of(p.data)
                state = self.state.setdefault(p, {})
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = xp.zeros_like(p.data)
                    state["exp_avg_sq"] = xp.zeros_like(p.data)
                    if amsgrad:
                        state["max_exp_avg_sq"] = xp.zeros_like(p.data)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]

                if amsgrad and "max_exp_avg_sq" not in state:  # amsgrad switched on after the first steps
                    state["max_exp_avg_sq"] = xp.zeros_like(p.data)
                buffers = (m, v) + ((state["max_exp_avg_sq"],) if amsgrad else ())
                hyper = {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay}
                hyper |= {"decoupled": self._decoupled, "maximize": maximize, "step": t}
                self._blockwise(functools.partial(adam_update, **hyper), p.data, g, *buffers)
        return loss


class AdamW(Adam):
    r"""Adam with *decoupled* weight decay (Loshchilov & Hutter, 2019), as PyTorch's ``AdamW``.

    Instead of adding ``weight_decay * p`` to the gradient (where Adam's
    per-coordinate scaling would weaken it for coordinates with large gradients),
    the parameter shrinks directly before the Adam step::

        p <- p * (1 - lr * weight_decay)
        p <- p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    The moments ``m`` and ``v`` see the raw gradient.  Default ``weight_decay=1e-2``.
    """

    _decoupled = True
    default_weight_decay = 1e-2


def adam_update(
    p: Any,
    g: Any,
    m: Any,
    v: Any,
    *v_max: Any,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    maximize: bool,
    step: int,
) -> None:
    """Adam's rule (see :class:`Adam`) on arrays, in place: the parameter ``p``, its gradient
    ``g``, the moments ``m`` and ``v`` and, with amsgrad, their running maximum ``v_max``."""
    xp = backend.xp_of(p)
    if maximize:
        g = -g
    if weight_decay != 0:
        if decoupled:
            p *= 1.0 - lr * weight_decay
        else:
            g = g + weight_decay * p
    m *= beta1
    m += (1.0 - beta1) * g
    v *= beta2
    v += (1.0 - beta2) * (g * g)
    if v_max:
        xp.maximum(v_max[0], v, out=v_max[0])
    v_hat = v_max[0] if v_max else v
    step_size = lr / (1.0 - beta1**step)
    bias_correction2_sqrt = math.sqrt(1.0 - beta2**step)
    # the one temporary: sqrt(v)/sqrt(bc2) + eps, then m/denom (an array even for a 0-d v)
    denom = xp.sqrt(v_hat, out=xp.empty_like(v_hat))
    denom /= bias_correction2_sqrt
    denom += eps
    xp.divide(m, denom, out=denom)
    denom *= step_size
    p -= denom
