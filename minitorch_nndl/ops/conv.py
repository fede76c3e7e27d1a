"""2-D convolution (cross-correlation, as in every deep-learning library) by im2col + one GEMM.

For an input x (N, C, H, W) and weights w (C_out, C/groups, KH, KW),

    y[n, o, i, j] = b[o] + sum_{c, kh, kw} w[o, c, kh, kw] * x_pad[n, c, i*sh + kh*dh, j*sw + kw*dw].

Laying every receptive field out as a column (:func:`minitorch_nndl.kernels.im2col`)
turns this into one matrix product  Y = W_mat @ cols  with W_mat (C_out, C*KH*KW)
and cols (C*KH*KW, N*OH*OW).  Its backward is two more matrix products:

    dW_mat = dY_mat @ cols^T          (how much each weight was used, times the gradient)
    dcols  = W_mat^T @ dY_mat         (then col2im adds each column entry back to its pixel)
    db     = sum of dY over n, i, j

With ``groups`` the channels split into independent blocks, and the single
GEMM becomes one batched matmul over the groups.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import backend, kernels
from ..autograd import Context, Function
from ..tensor import Tensor
from .validate import Pair, pair


class ConvGeometry(NamedTuple):
    """What the backward needs to know about the forward's shapes."""

    x_shape: tuple[int, int, int, int]
    kernel_size: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    groups: int


class Conv2d(Function):
    """y = W_mat @ im2col(x) + b, reshaped to (N, C_out, OH, OW).

    dL/dW = dY_mat @ cols^T,  dL/dx = col2im(W_mat^T @ dY_mat),  dL/db = sum_{n,i,j} dY.
    """

    @staticmethod
    def forward(
        ctx: Context, x: Any, weight: Any, bias: Any, stride: Pair, padding: Pair, dilation: Pair, groups: int
    ) -> Any:
        xp = backend.xp_of(x)
        N, C, H, W = x.shape
        C_out, _, KH, KW = weight.shape
        G = groups
        OH = kernels.conv_output_size(H, KH, stride[0], padding[0], dilation[0])
        OW = kernels.conv_output_size(W, KW, stride[1], padding[1], dilation[1])
        cols = kernels.im2col(x, (KH, KW), stride, padding, dilation)  # (C*KH*KW, N*OH*OW)
        if G == 1:
            out = weight.reshape(C_out, -1) @ cols  # (C_out, N*OH*OW): the one GEMM
        else:
            w_groups = weight.reshape(G, C_out // G, -1)  # (G, C_out/G, C/G*KH*KW)
            out = xp.matmul(w_groups, cols.reshape(G, -1, cols.shape[1]))  # rows of cols are group-major
        out = out.reshape(C_out, N, OH, OW).transpose(1, 0, 2, 3)  # an NCHW view
        needs = ctx.needs_input_grad
        if needs:
            # cols is only needed for dW; without it the backward keeps just the (small) weight.
            ctx.save_for_backward(cols if needs[1] else None, weight)
            ctx.geometry = ConvGeometry(x.shape, (KH, KW), stride, padding, dilation, G)
        if bias is None:
            return xp.ascontiguousarray(out)
        # one pass makes the result contiguous and adds the bias
        return xp.add(out, bias.reshape(1, C_out, 1, 1), out=xp.empty(out.shape, dtype=out.dtype))

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        cols, weight = ctx.saved_tensors
        x_shape, kernel_size, stride, padding, dilation, G = ctx.geometry
        xp = backend.xp_of(grad)
        N, C_out, OH, OW = grad.shape
        needs = ctx.needs_input_grad
        db = grad.sum(axis=(0, 2, 3)) if needs[2] else None
        if not (needs[0] or needs[1]):
            return None, None, db
        # dY as a (C_out, N*OH*OW) matrix: the same layout as the forward product.
        g_mat = xp.ascontiguousarray(grad.reshape(N, C_out, OH * OW).transpose(1, 0, 2)).reshape(C_out, -1)
        dx = dw = None
        if G == 1:
            if needs[1]:
                dw = (g_mat @ cols.T).reshape(weight.shape)
            if needs[0]:
                dcols = weight.reshape(C_out, -1).T @ g_mat
        else:
            g_groups = g_mat.reshape(G, C_out // G, -1)
            w_groups = weight.reshape(G, C_out // G, -1)
            if needs[1]:
                cols_groups = cols.reshape(G, -1, cols.shape[1])
                dw = xp.matmul(g_groups, cols_groups.transpose(0, 2, 1)).reshape(weight.shape)
            if needs[0]:
                dcols = xp.matmul(w_groups.transpose(0, 2, 1), g_groups).reshape(-1, g_mat.shape[1])
        if needs[0]:
            dx = kernels.col2im(dcols, x_shape, kernel_size, stride, padding, dilation)
        return dx, dw, db


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Pair = 1,
    padding: int | Pair = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution of ``x`` (N, C_in, H, W) with ``weight`` (C_out, C_in/groups, KH, KW).

    ``stride``, ``padding`` (zeros on both sides) and ``dilation`` are ints or
    (height, width) pairs.  The output has shape (N, C_out, OH, OW) with
    OH = floor((H + 2*pad - dilation*(KH-1) - 1) / stride) + 1 (and the same for OW).
    """
    op = "conv2d"
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{op}: x and weight must be Tensors, got {type(x).__name__} and {type(weight).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D weight (C_out, C_in/groups, KH, KW), got shape {weight.shape}")
    stride = pair(stride, "stride", op, minimum=1)
    padding = pair(padding, "padding", op, minimum=0)
    dilation = pair(dilation, "dilation", op, minimum=1)
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    N, C, H, W = x.shape
    C_out, C_per_group, KH, KW = weight.shape
    if C % groups or C_out % groups:
        raise ValueError(
            f"{op}: groups={groups} must divide both the input channels ({C}, input shape {x.shape}) "
            f"and the output channels ({C_out}, weight shape {weight.shape})"
        )
    if C_per_group * groups != C:
        raise ValueError(
            f"{op}: input shape {x.shape} has {C} channels, but weight shape {weight.shape} with groups={groups} "
            f"expects {C_per_group * groups} (weight.shape[1] * groups)"
        )
    if not backend.is_floating(x.dtype) or x.dtype != weight.dtype:
        raise TypeError(f"{op}: input and weight must have the same floating dtype, got {x.dtype} and {weight.dtype}")
    if bias is not None:
        if not isinstance(bias, Tensor) or bias.shape != (C_out,):
            shape = bias.shape if isinstance(bias, Tensor) else type(bias).__name__
            raise ValueError(f"{op}: bias must be a Tensor of shape ({C_out},) for weight {weight.shape}, got {shape}")
        if bias.dtype != x.dtype:
            raise TypeError(f"{op}: bias dtype {bias.dtype} differs from the input dtype {x.dtype}")
    OH = kernels.conv_output_size(H, KH, stride[0], padding[0], dilation[0])
    OW = kernels.conv_output_size(W, KW, stride[1], padding[1], dilation[1])
    if OH <= 0 or OW <= 0:
        raise ValueError(
            f"{op}: output size {OH}x{OW} is not positive for input shape {x.shape}, kernel {KH}x{KW}, "
            f"stride {stride}, padding {padding}, dilation {dilation}"
        )
    return Conv2d.apply(x, weight, bias, stride, padding, dilation, groups)
