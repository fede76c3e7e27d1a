"""``Linear``: a fully connected layer."""

from __future__ import annotations

from typing import Any

from .. import backend
from ..factories import empty
from ..ops.validate import float_dtype
from ..tensor import Tensor
from . import functional as F  # noqa: N812  (PyTorch's conventional name)
from . import init
from .module import Module
from .parameter import Parameter


class Linear(Module):
    """y = x W^T + b with W of shape (out_features, in_features) and b of shape (out_features,).

    Initialised as PyTorch does: W ~ kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)),
    and b ~ U(-1/sqrt(in), 1/sqrt(in)).  Gradients: see :func:`nn.functional.linear`.
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(
                f"Linear: in_features and out_features must be positive, got {in_features}, {out_features}"
            )
        dtype = float_dtype(dtype, "Linear")
        device = backend.normalize_device(device)
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(empty(out_features, in_features, dtype=dtype, device=device))
        self.register_parameter("bias", Parameter(empty(out_features, dtype=dtype, device=device)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
