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


MIN_ZEROS_RUN = 64
"""ReLU's maximum(x, 0) runs against a row of zeros along x's innermost memory axis when that
axis is at least this long.  NumPy's fast (SIMD) loop for ``maximum`` wants both operands
contiguous and has none for a scalar: measured (NumPy 2.4, AVX-512), 1M float32 values
channels-last took 0.34 ms against the scalar 0 and 0.19 ms against a (1, C, 1, 1) row of
zeros; with a short innermost axis (4) the row is slower than the scalar, hence the minimum."""

ZEROS_ROW = 4096
"""Better still, an array that is one block of memory (as a conv output or a chunk of one is) is
viewed as rows of ``ZEROS_ROW`` values in memory order, against one row of zeros: NumPy's loop
then never restarts at a channel boundary (2 images of 64 channels at 32x32: 14 instead of 25 us;
16 images: 107 instead of 178)."""

_zero_rows: dict = {}


def relu_into(x: Any, out: Any) -> Any:
    """out = max(x, 0), elementwise (NaN stays NaN); returns ``out``.  See ``MIN_ZEROS_RUN``, ``ZEROS_ROW``."""
    xp = backend.xp_of(x)
    rows, out_rows = _memory_rows(x), _memory_rows(out)
    if rows is not None and out_rows is not None and x.strides == out.strides:
        xp.maximum(rows, _zero_row(x.dtype), out=out_rows)
        return out
    return xp.maximum(x, _zeros_along_memory(x), out=out)


def _memory_rows(a: Any) -> Any:
    """``a`` as (size / ZEROS_ROW, ZEROS_ROW) rows in its memory order, when a NumPy ``a`` is one
    contiguous block (in some order of its axes) whose size ZEROS_ROW divides; else None."""
    if backend.is_cuda_array(a) or a.ndim == 0 or a.size % ZEROS_ROW:
        return None
    in_memory_order = a.transpose(sorted(range(a.ndim), key=lambda k: -a.strides[k]))
    return in_memory_order.reshape(-1, ZEROS_ROW) if in_memory_order.flags.c_contiguous else None


def _zero_row(dtype: Any) -> Any:
    """A read-only row of ZEROS_ROW zeros of ``dtype`` (made once per dtype)."""
    row = _zero_rows.get(dtype)
    if row is None:
        row = backend.np.zeros(ZEROS_ROW, dtype=dtype)
        row.flags.writeable = False
        _zero_rows[dtype] = row
    return row


def _zeros_along_memory(x: Any) -> Any:
    """A zero that ``maximum`` broadcasts against ``x`` quickly: zeros shaped (1, .., n, .., 1) along
    the axis with the smallest stride when it is long enough (NumPy), else the scalar 0."""
    zero = x.dtype.type(0)
    if x.ndim == 0 or backend.is_cuda_array(x):
        return zero
    axis = min(range(x.ndim), key=lambda k: abs(x.strides[k]) if x.shape[k] > 1 else float("inf"))
    if x.shape[axis] < MIN_ZEROS_RUN or abs(x.strides[axis]) != x.itemsize:
        return zero
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return backend.np.zeros(shape, dtype=x.dtype)


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


# ---------------------------------------------------------------------------------------------
# Channels-last: one row per output position.
#
# With the channels as the last (fastest) axis, x (N, H, W, C), the natural layout is the
# transpose of im2col's: one *row* per output position (n, oh, ow) and one column per
# (kh, kw, c).  The convolution is then  Y_rows = rows @ W_rows^T  with W_rows
# (C_out, KH*KW*C), and Y_rows (N*OH*OW, C_out) *is* the output in channels-last layout:
# no transpose after the GEMM.  Every copy moves a contiguous run of C values.
# ---------------------------------------------------------------------------------------------


def valid_span(size: int, out: int, offset: int, stride: int, padding: int, dilation: int) -> tuple[slice, slice]:
    """Along one axis, for kernel offset ``offset``: the output positions o whose input index
    i = o*stride - padding + offset*dilation lies inside [0, size), and those input indices.

    Returned as (output slice, input slice) of equal length; outputs outside the first
    slice read padding (zeros).
    """
    shift = offset * dilation - padding
    first = max(0, -(shift // stride))  # the smallest o with o*stride + shift >= 0
    stop = min(out, (size - 1 - shift) // stride + 1)  # one past the largest o with i <= size - 1
    if stop <= first:
        return slice(0, 0), slice(0, 0)
    return slice(first, stop), window_slice(first * stride + shift, stride, stop - first)


def _offset_spans(x_hw: Pair, out_hw: Pair, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair) -> list:
    """(kh, kw, output rows, input rows, output columns, input columns) for every kernel offset."""
    spans = []
    for kh in range(kernel_size[0]):
        oh, ih = valid_span(x_hw[0], out_hw[0], kh, stride[0], padding[0], dilation[0])
        for kw in range(kernel_size[1]):
            ow, iw = valid_span(x_hw[1], out_hw[1], kw, stride[1], padding[1], dilation[1])
            spans.append((kh, kw, oh, ih, ow, iw))
    return spans


def im2row(
    x: Any,
    kernel_size: Pair,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
    out: Any = None,
    padding_is_zero: bool = False,
) -> Any:
    """The (N*OH*OW, KH*KW*C) row matrix of a channels-last ``x`` (N, H, W, C):

        rows[(n, oh, ow), (kh, kw, c)] = x_padded[n, oh*sh + kh*dh, ow*sw + kw*dw, c].

    One strided copy per kernel offset (kh, kw) of the input pixels that offset reads,
    and zeros where it reads the padding (no padded copy of x is made).  ``out``, when
    given, is a C-contiguous array of that shape to fill (a reused workspace).  With
    ``padding_is_zero`` the entries of ``out`` that read the padding are zero already (a
    buffer that was all zeros and that only im2row of this same geometry has filled since:
    it never writes them), so only the copies run; the four zero fills per offset are most
    of a chunk's NumPy calls (measured on one core, 4 images of 32x32x64 at stride 2:
    84 instead of 111 us).
    """
    xp = backend.xp_of(x)
    N, H, W, C = x.shape
    KH, KW = kernel_size
    OH = conv_output_size(H, KH, stride[0], padding[0], dilation[0])
    OW = conv_output_size(W, KW, stride[1], padding[1], dilation[1])
    if out is None:
        out = xp.empty((N * OH * OW, KH * KW * C), dtype=x.dtype)
    view = out.reshape(N, OH, OW, KH, KW, C)
    zero = x.dtype.type(0)
    for kh, kw, oh, ih, ow, iw in _offset_spans((H, W), (OH, OW), kernel_size, stride, padding, dilation):
        target = view[:, :, :, kh, kw]  # (N, OH, OW, C): what offset (kh, kw) reads for every output
        if padding_is_zero:
            target[:, oh, ow] = x[:, ih, iw]
            continue
        target[:, : oh.start] = zero  # rows of outputs whose window reaches into the top padding...
        target[:, oh.stop :] = zero  # ...or the bottom padding
        target[:, oh, : ow.start] = zero
        target[:, oh, ow.stop :] = zero
        target[:, oh, ow] = x[:, ih, iw]
    return out


def row2im(rows: Any, x_shape: tuple[int, int, int, int], *geometry: Pair, out: Any = None) -> Any:
    """The adjoint of :func:`im2row`: rows (N*OH*OW, KH*KW*C) scatter-added into a channels-last
    (N, H, W, C) array ``x_shape`` (or into ``out``, which is overwritten).  ``geometry`` is
    (kernel_size, stride, padding, dilation) as for :func:`im2row`; stride, padding and
    dilation default to (1, 1), (0, 0), (1, 1).

    One strided add per kernel offset; entries that came from the padding are dropped.
    """
    xp = backend.xp_of(rows)
    kernel_size, stride, padding, dilation = geometry + ((1, 1), (0, 0), (1, 1))[len(geometry) - 1 :]
    N, H, W, C = x_shape
    OH = conv_output_size(H, kernel_size[0], stride[0], padding[0], dilation[0])
    OW = conv_output_size(W, kernel_size[1], stride[1], padding[1], dilation[1])
    if out is None:
        out = xp.empty(tuple(x_shape), dtype=rows.dtype)
    out[...] = 0
    view = rows.reshape(N, OH, OW, *kernel_size, C)
    for kh, kw, oh, ih, ow, iw in _offset_spans((H, W), (OH, OW), kernel_size, stride, padding, dilation):
        out[:, ih, iw] += view[:, oh, ow, kh, kw]
    return out
