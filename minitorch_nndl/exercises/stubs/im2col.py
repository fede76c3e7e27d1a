"""Exercise: col2im, the backward of im2col (docs/04-convolution.md, "Forward: im2col, then
one matrix product" and "Backward: two matrix products and col2im").

``im2col`` (given) lays every receptive field of x (N, C, H, W) out as a column:

    cols[(c, kh, kw), (n, oh, ow)] = x_padded[n, c, oh*sh + kh*dh, ow*sw + kw*dw]

a (C*KH*KW, N*OH*OW) matrix, built with one strided slice per kernel offset (kh, kw).

Derive: ``col2im``, its adjoint: given dL/dcols, what is dL/dx?  Every column entry
is a copy of one input pixel, so its gradient goes back to that pixel; a pixel that
sits in several windows receives the sum.  Work per kernel offset, like im2col, and
remember the padding is not part of x.  conv2d imports both functions.

Check:  python3 -m minitorch_nndl.exercises check im2col --dir DIR
"""

import numpy as np

import minitorch_nndl as mt


def output_size(size, kernel, stride, padding, dilation):
    """Window positions along one axis: floor((size + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def im2col(x, kernel_size, stride, padding, dilation):
    """The (C*KH*KW, N*OH*OW) column matrix of x (N, C, H, W) (given)."""
    N, C, H, W = x.shape
    KH, KW = kernel_size
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    OH, OW = output_size(H, KH, sh, ph, dh), output_size(W, KW, sw, pw, dw)
    x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((C, KH, KW, N, OH, OW), dtype=x.dtype)
    for kh in range(KH):
        for kw in range(KW):
            rows = slice(kh * dh, kh * dh + sh * (OH - 1) + 1, sh)
            columns = slice(kw * dw, kw * dw + sw * (OW - 1) + 1, sw)
            cols[:, kh, kw] = x_padded[:, :, rows, columns].transpose(1, 0, 2, 3)  # (C, N, OH, OW)
    return cols.reshape(C * KH * KW, N * OH * OW)


def col2im(cols, x_shape, kernel_size, stride, padding, dilation):
    """dL/dx (N, C, H, W) from dL/dcols (C*KH*KW, N*OH*OW): the adjoint of ``im2col``."""
    raise NotImplementedError("col2im: write it (the module docstring says what to derive)")


class Im2col(mt.Function):
    """cols = im2col(x);  dL/dx = col2im(dL/dcols)."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation):
        ctx.geometry = x.shape, kernel_size, stride, padding, dilation
        return im2col(x, kernel_size, stride, padding, dilation)

    @staticmethod
    def backward(ctx, grad):
        return (col2im(grad, *ctx.geometry),)
