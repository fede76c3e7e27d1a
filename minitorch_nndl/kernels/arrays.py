"""im2col / col2im with array expressions: one strided copy in, KH*KW strided adds out.

A convolution is a matrix product once every receptive field is laid out as a
column.  For an input ``x`` of shape (N, C, H, W), a kernel of KH x KW, and an
output of OH x OW positions, :func:`im2col` builds the column matrix

    cols[(c, kh, kw), (n, oh, ow)] = x_padded[n, c, oh*sh + kh*dh, ow*sw + kw*dw]

of shape (C*KH*KW, N*OH*OW).  The rows are ordered (c, kh, kw), exactly the
order of ``weight.reshape(C_out, C*KH*KW)``, so the convolution is the single
GEMM ``weight_matrix @ cols``; the columns are ordered (n, oh, ow), so the
product reshapes to (C_out, N, OH, OW) without a copy.

:func:`col2im` is its adjoint (the backward of im2col): every column entry is
added back to the input pixel it was copied from.  Pixels shared by several
overlapping windows receive the sum of their contributions.

The functions take the array module from the array (``backend.xp_of``), so
they run unchanged on NumPy and CuPy arrays.
"""

from __future__ import annotations

import importlib
from typing import Any

from .. import backend

Pair = tuple[int, int]


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Number of window positions along one axis: floor((size + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pad_spatial(x: Any, padding: Pair, value: float = 0.0) -> Any:
    """``x`` (N, C, H, W) with ``padding`` rows/columns of ``value`` on each side (no copy when 0)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    xp = backend.xp_of(x)
    N, C, H, W = x.shape
    out = xp.full((N, C, H + 2 * ph, W + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph : ph + H, pw : pw + W] = x
    return out


def _as_strided(xp: Any) -> Any:
    """``as_strided`` of NumPy or CuPy (both live in ``<module>.lib.stride_tricks``)."""
    return importlib.import_module(f"{xp.__name__}.lib.stride_tricks").as_strided


def window_slice(offset: int, stride: int, count: int) -> slice:
    """The positions ``offset, offset + stride, ..., offset + stride*(count-1)`` as a slice."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def im2col(x: Any, kernel_size: Pair, stride: Pair = (1, 1), padding: Pair = (0, 0), dilation: Pair = (1, 1)) -> Any:
    """The (C*KH*KW, N*OH*OW) column matrix of ``x`` (N, C, H, W), one contiguous array.

    Built with one strided copy: ``as_strided`` presents the padded input as a
    (C, KH, KW, N, OH, OW) view whose entries are the window elements (no data
    moves), and ``ascontiguousarray`` materializes it in that order.
    """
    xp = backend.xp_of(x)
    N, C, H, W = x.shape
    KH, KW = kernel_size
    sh, sw = stride
    dh, dw = dilation
    OH = conv_output_size(H, KH, sh, padding[0], dh)
    OW = conv_output_size(W, KW, sw, padding[1], dw)
    xpad = pad_spatial(x, padding)
    sN, sC, sH, sW = xpad.strides
    windows = _as_strided(xp)(xpad, shape=(C, KH, KW, N, OH, OW), strides=(sC, sH * dh, sW * dw, sN, sH * sh, sW * sw))
    return xp.ascontiguousarray(windows).reshape(C * KH * KW, N * OH * OW)


def col2im(
    cols: Any,
    x_shape: tuple[int, int, int, int],
    kernel_size: Pair,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
) -> Any:
    """The adjoint of :func:`im2col`: scatter-add columns (C*KH*KW, N*OH*OW) back into (N, C, H, W).

    One vectorized add per kernel offset (kh, kw): the (N, C, OH, OW) block of
    columns for that offset lands on the strided grid of input pixels it was read
    from, ``x[:, :, kh*dh + sh*oh, kw*dw + sw*ow]``.  Overlaps between offsets
    accumulate because each offset is a separate ``+=``.
    """
    xp = backend.xp_of(cols)
    N, C, H, W = x_shape
    KH, KW = kernel_size
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    OH = conv_output_size(H, KH, sh, ph, dh)
    OW = conv_output_size(W, KW, sw, pw, dw)
    blocks = cols.reshape(C, KH, KW, N, OH, OW)
    out = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    target = out.transpose(1, 0, 2, 3)  # a (C, N, ...) view, so both operands are walked in the same order
    for kh in range(KH):
        rows = window_slice(kh * dh, sh, OH)
        for kw in range(KW):
            target[:, :, rows, window_slice(kw * dw, sw, OW)] += blocks[:, kh, kw]
    if ph or pw:
        out = xp.ascontiguousarray(out[:, :, ph : ph + H, pw : pw + W])
    return out
