"""Activation layers (no parameters): each wraps the elementwise op of the same name."""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F  # noqa: N812  (PyTorch's conventional name)
from .module import Module


class ReLU(Module):
    """y = max(x, 0);  dy/dx = 1 where x > 0, else 0."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class LeakyReLU(Module):
    """y = x if x > 0 else a x;  dy/dx = 1 or a."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x));  dy/dx = y (1 - y)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """y = tanh(x);  dy/dx = 1 - y^2."""

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)
