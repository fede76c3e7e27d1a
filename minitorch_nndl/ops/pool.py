"""2-D pooling: max, average, and adaptive average, over (N, C, H, W) inputs.

Every pooling window position (kh, kw) selects a strided grid of the padded
input, ``x_pad[:, :, kh + sh*i, kw + sw*j]`` for all outputs (i, j) at once, so
forward and backward are a loop over the KH*KW offsets of vectorized array
operations (no loop over pixels).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from .. import backend
from ..autograd import Context, Function
from ..kernels import conv_output_size, pad_spatial, window_slice
from ..tensor import Tensor
from .validate import Pair, pair


class PoolGeometry(NamedTuple):
    """What a pool's backward needs to know about the forward's shapes."""

    x_shape: tuple[int, ...]
    pad_shape: tuple[int, ...]
    kernel: Pair
    stride: Pair
    padding: Pair
    out_hw: Pair


def _offsets(kernel: Pair) -> list[tuple[int, int]]:
    return [(kh, kw) for kh in range(kernel[0]) for kw in range(kernel[1])]


def _window(array: Any, kh: int, kw: int, stride: Pair, out_hw: Pair) -> Any:
    """The (N, C, OH, OW) view of ``array`` read by kernel offset (kh, kw)."""
    return array[:, :, window_slice(kh, stride[0], out_hw[0]), window_slice(kw, stride[1], out_hw[1])]


def _crop(array: Any, padding: Pair, shape: tuple[int, ...]) -> Any:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return array
    H, W = shape[2], shape[3]
    return backend.xp_of(array).ascontiguousarray(array[:, :, ph : ph + H, pw : pw + W])


class MaxPool2d(Function):
    """y = max over each window;  dL/dx = dL/dy at the window's argmax (the first maximum on ties), 0 elsewhere.

    Each output's gradient goes to exactly one input; overlapping windows that
    share a maximum add their gradients there.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair) -> Any:
        xp = backend.xp_of(x)
        xpad = pad_spatial(x, padding, value=-math.inf)
        offsets = _offsets(kernel)
        out = xp.array(_window(xpad, 0, 0, stride, out_hw), copy=True)
        index_dtype = xp.uint8 if len(offsets) <= 255 else xp.int32
        argmax = xp.zeros(out.shape, dtype=index_dtype)
        for k, (kh, kw) in enumerate(offsets[1:], start=1):
            # one contiguous copy: the compare and the maximum below are much faster on it than on a strided view
            candidate = xp.ascontiguousarray(_window(xpad, kh, kw, stride, out_hw))
            better = candidate > out  # strict: an earlier offset keeps a tie
            argmax = xp.where(better, argmax.dtype.type(k), argmax)
            xp.maximum(out, candidate, out=out)
        if ctx.needs_input_grad:
            ctx.save_for_backward(argmax)
            ctx.geometry = PoolGeometry(x.shape, xpad.shape, kernel, stride, padding, out_hw)
        return out

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        (argmax,) = ctx.saved_tensors
        x_shape, pad_shape, kernel, stride, padding, out_hw = ctx.geometry
        xp = backend.xp_of(grad)
        dx = xp.zeros(pad_shape, dtype=grad.dtype)
        zero = grad.dtype.type(0)
        for k, (kh, kw) in enumerate(_offsets(kernel)):
            _window(dx, kh, kw, stride, out_hw)[...] += xp.where(argmax == k, grad, zero)
        return (_crop(dx, padding, x_shape),)


class AvgPool2d(Function):
    """y = (1 / (KH*KW)) * sum over each window (zero padding counted);  dL/dx = sum over the windows
    containing x of dL/dy / (KH*KW)."""

    @staticmethod
    def forward(ctx: Context, x: Any, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair) -> Any:
        xp = backend.xp_of(x)
        xpad = pad_spatial(x, padding, value=0.0)
        offsets = _offsets(kernel)
        out = xp.array(_window(xpad, 0, 0, stride, out_hw), copy=True)
        for kh, kw in offsets[1:]:
            out += _window(xpad, kh, kw, stride, out_hw)
        out /= x.dtype.type(len(offsets))
        ctx.geometry = PoolGeometry(x.shape, xpad.shape, kernel, stride, padding, out_hw)
        return out

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        x_shape, pad_shape, kernel, stride, padding, out_hw = ctx.geometry
        xp = backend.xp_of(grad)
        offsets = _offsets(kernel)
        share = grad / grad.dtype.type(len(offsets))
        dx = xp.zeros(pad_shape, dtype=grad.dtype)
        for kh, kw in offsets:
            _window(dx, kh, kw, stride, out_hw)[...] += share
        return (_crop(dx, padding, x_shape),)


def _adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's bins: output i averages [floor(i*size/out), ceil((i+1)*size/out))."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def _averaging_matrix(size: int, out: int, dtype: Any, device: str) -> Any:
    """A (out, size) matrix whose row i averages bin i: 1/len(bin) inside the bin, 0 outside."""
    matrix = np.zeros((out, size))
    for i, (start, end) in enumerate(_adaptive_bins(size, out)):
        matrix[i, start:end] = 1.0 / (end - start)
    return backend.asarray(matrix, dtype=dtype, device=device)


class AdaptiveAvgPool2d(Function):
    """y = A_h x A_w^T, with A_h (OH, H) and A_w (OW, W) averaging each bin (a separable average);
    dL/dx = A_h^T (dL/dy) A_w."""

    @staticmethod
    def forward(ctx: Context, x: Any, out_hw: Pair) -> Any:
        xp = backend.xp_of(x)
        H, W = x.shape[2], x.shape[3]
        ctx.shape = x.shape
        if out_hw == (1, 1):  # global average pooling: the common case, a plain mean
            ctx.matrices = None
            return x.mean(axis=(2, 3), keepdims=True)
        device = backend.device_of(x)
        a_h = _averaging_matrix(H, out_hw[0], x.dtype, device)
        a_w = _averaging_matrix(W, out_hw[1], x.dtype, device)
        ctx.matrices = (a_h, a_w)
        return xp.matmul(xp.matmul(a_h, x), a_w.T)

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        xp = backend.xp_of(grad)
        if ctx.matrices is None:
            H, W = ctx.shape[2], ctx.shape[3]
            return (xp.broadcast_to(grad / grad.dtype.type(H * W), ctx.shape),)
        a_h, a_w = ctx.matrices
        return (xp.matmul(xp.matmul(a_h.T, grad), a_w),)


def _check_image_batch(op: str, x: Any) -> None:
    """Every pool takes a floating (N, C, H, W) Tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {x.shape}")
    if not backend.is_floating(x.dtype):
        raise TypeError(f"{op}: expected a floating-point input, got dtype {x.dtype}")


def _pool_args(op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any) -> tuple[Pair, Pair, Pair, Pair]:
    _check_image_batch(op, x)
    kernel = pair(kernel_size, "kernel_size", op, minimum=1)
    stride = kernel if stride is None else pair(stride, "stride", op, minimum=1)
    padding = pair(padding, "padding", op, minimum=0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel}")
    H, W = x.shape[2], x.shape[3]
    out_hw = (
        conv_output_size(H, kernel[0], stride[0], padding[0], 1),
        conv_output_size(W, kernel[1], stride[1], padding[1], 1),
    )
    if out_hw[0] <= 0 or out_hw[1] <= 0:
        raise ValueError(
            f"{op}: output size {out_hw[0]}x{out_hw[1]} is not positive for input shape {x.shape}, "
            f"kernel {kernel}, stride {stride}, padding {padding}"
        )
    return kernel, stride, padding, out_hw


def max_pool2d(x: Tensor, kernel_size: int | Pair, stride: int | Pair | None = None, padding: int | Pair = 0) -> Tensor:
    """Maximum over KH x KW windows (``stride`` defaults to the kernel size; padding is -inf)."""
    kernel, stride, padding, out_hw = _pool_args("max_pool2d", x, kernel_size, stride, padding)
    return MaxPool2d.apply(x, kernel, stride, padding, out_hw)


def avg_pool2d(x: Tensor, kernel_size: int | Pair, stride: int | Pair | None = None, padding: int | Pair = 0) -> Tensor:
    """Mean over KH x KW windows; zero padding counts in the mean (PyTorch's count_include_pad=True)."""
    kernel, stride, padding, out_hw = _pool_args("avg_pool2d", x, kernel_size, stride, padding)
    return AvgPool2d.apply(x, kernel, stride, padding, out_hw)


def adaptive_avg_pool2d(x: Tensor, output_size: int | Pair) -> Tensor:
    """Average pooling to a fixed (OH, OW) output whatever the input size; output i (along each
    axis) averages input positions floor(i*H/OH) .. ceil((i+1)*H/OH) - 1, as PyTorch does."""
    op = "adaptive_avg_pool2d"
    _check_image_batch(op, x)
    out_hw = pair(output_size, "output_size", op, minimum=1)
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{op}: input shape {x.shape} has an empty spatial dimension")
    return AdaptiveAvgPool2d.apply(x, out_hw)
