"""``Conv2d``: a 2-D convolution layer (cross-correlation, as in every DL framework)."""

from __future__ import annotations

from typing import Any

from .. import backend
from ..factories import empty
from ..ops.validate import float_dtype, pair
from ..tensor import Tensor
from . import functional as F  # noqa: N812  (PyTorch's conventional name)
from . import init
from .module import Module
from .parameter import Parameter


class Conv2d(Module):
    """y[n, o] = b[o] + sum_{c, i, j} W[o, c, i, j] x[n, c, s*h + d*i - p, s*w + d*j - p].

    Weight shape (out_channels, in_channels // groups, kh, kw), bias shape (out_channels,).
    Without groups the weight's memory is channels-last, (out_channels, kh, kw, in_channels)
    underneath, as PyTorch's ``channels_last`` format: the shape, the values and every
    operation are the same, but the convolution reads it as its (C_out, KH*KW*C_in) matrix
    without a copy, and its gradient (computed in that order) has the same layout, so the
    optimizer's updates run over matching memory.
    Initialised as PyTorch does: W ~ kaiming_uniform_(a=sqrt(5)) (= U(-1/sqrt(fan_in), 1/sqrt(fan_in))),
    b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels/groups * kh * kw.
    Gradients: see :func:`minitorch_nndl.ops.conv.conv2d`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if in_channels <= 0 or out_channels <= 0 or groups <= 0:
            raise ValueError(
                f"Conv2d: in_channels, out_channels and groups must be positive, "
                f"got {in_channels}, {out_channels}, {groups}"
            )
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) "
                f"must be divisible by groups ({groups})"
            )
        dtype = float_dtype(dtype, "Conv2d")
        device = backend.normalize_device(device)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d", minimum=1)
        self.stride = pair(stride, "stride", "Conv2d", minimum=1)
        self.padding = pair(padding, "padding", "Conv2d", minimum=0)
        self.dilation = pair(dilation, "dilation", "Conv2d", minimum=1)
        self.groups = groups
        kh, kw = self.kernel_size
        if groups == 1:  # stored channels-last: W_rows, the GEMM's operand, is then a view of it
            storage = empty(out_channels, kh, kw, in_channels, dtype=dtype, device=device)
            self.weight = Parameter(storage.permute(0, 3, 1, 2))
        else:  # grouped: the batched matmul reads (groups, C_out/groups, C/groups*KH*KW) blocks of W
            self.weight = Parameter(empty(out_channels, in_channels // groups, kh, kw, dtype=dtype, device=device))
        self.register_parameter("bias", Parameter(empty(out_channels, dtype=dtype, device=device)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
