"""``Flatten``: merge axes, by default all but the batch axis (conv features -> a Linear layer)."""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F  # noqa: N812  (PyTorch's conventional name)
from .module import Module


class Flatten(Module):
    """y = x reshaped to (N, C*H*W) for start_dim=1;  dL/dx = dL/dy reshaped back."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x: Tensor) -> Tensor:
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
