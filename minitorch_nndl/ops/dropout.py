"""Inverted dropout: zero each element with probability p during training, scale the rest by 1/(1-p).

Scaling at training time keeps E[y] = x, so evaluation is simply the identity
(no rescaling needed at test time).
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd import Context, Function
from ..tensor import Tensor


class Dropout(Function):
    """y = x * m / (1 - p) with a fixed random mask m ~ Bernoulli(1 - p);  dL/dx = dL/dy * m / (1 - p)."""

    @staticmethod
    def forward(ctx: Context, x: Any, p: float) -> Any:
        xp = backend.xp_of(x)
        rng = backend.rng_for(backend.device_of(x))
        uniform_dtype = x.dtype if x.dtype in (backend.float32, backend.float64) else backend.float32
        keep = rng.random(x.shape, dtype=uniform_dtype) >= p
        if p < 1:
            scaled_mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
        else:
            scaled_mask = xp.zeros(x.shape, dtype=x.dtype)  # everything dropped
        if ctx.needs_input_grad:
            ctx.save_for_backward(scaled_mask)
        return x * scaled_mask

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (scaled_mask,) = ctx.saved_tensors
        return grad * scaled_mask, None


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout with drop probability ``p``; the identity when not training or when p == 0.

    The mask comes from the library's seeded generator for ``x``'s device
    (``backend.rng_for``), so ``mt.manual_seed`` makes it reproducible.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"dropout: expected a Tensor, got {type(x).__name__}")
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"dropout: probability p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if not backend.is_floating(x.dtype):
        raise TypeError(f"dropout: expected a floating-point input, got dtype {x.dtype}")
    return Dropout.apply(x, float(p))
