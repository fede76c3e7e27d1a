"""``Dropout``: zero activations at random while training (inverted scaling)."""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F  # noqa: N812  (PyTorch's conventional name)
from .module import Module


class Dropout(Module):
    """Training: y = x * m / (1 - p) with m ~ Bernoulli(1 - p) per element, so E[y] = x;
    dy/dx = m / (1 - p).  Evaluation: y = x."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
