"""Exercise: the backward of a 2-D convolution by im2col + one matrix product
(docs/04-convolution.md, "Backward: two matrix products and col2im").

The forward (given) computes, with W_mat = weight.reshape(C_out, C*KH*KW),

    cols = im2col(x)                         (C*KH*KW, N*OH*OW)
    Y_mat = W_mat @ cols                     (C_out, N*OH*OW)
    y = Y_mat as (N, C_out, OH, OW) + bias   (one bias per output channel)

Derive: dL/dweight, dL/dx and dL/dbias from grad = dL/dy.  Write grad as a
(C_out, N*OH*OW) matrix first (the layout of Y_mat); then each is one matrix product
or one sum, and dL/dx goes through col2im (yours, from the im2col exercise).  Check
every shape on paper: dL/dweight has weight's shape.  The grader uses groups=1.

Check:  python3 -m minitorch_nndl.exercises check conv2d --dir DIR
"""

from im2col import col2im, im2col, output_size  # noqa: F401  (yours, from the im2col exercise)

import minitorch_nndl as mt


class Conv2d(mt.Function):
    """y = conv2d(x, weight) + bias as im2col + one GEMM (groups=1 only)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        if groups != 1:
            raise ValueError(f"this exercise's Conv2d handles groups=1 only, got groups={groups}")
        N, C, H, W = x.shape
        C_out, _, KH, KW = weight.shape
        OH = output_size(H, KH, stride[0], padding[0], dilation[0])
        OW = output_size(W, KW, stride[1], padding[1], dilation[1])
        cols = im2col(x, (KH, KW), stride, padding, dilation)
        y = (weight.reshape(C_out, -1) @ cols).reshape(C_out, N, OH, OW).transpose(1, 0, 2, 3)
        if bias is not None:
            y = y + bias.reshape(1, C_out, 1, 1)
        ctx.save_for_backward(cols, weight)
        ctx.geometry = x.shape, (KH, KW), stride, padding, dilation
        ctx.has_bias = bias is not None
        return y.copy()  # contiguous

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/dx, dL/dweight, dL/dbias): dL/dbias is None when there is no bias."""
        cols, weight = ctx.saved_tensors
        x_shape, kernel_size, stride, padding, dilation = ctx.geometry
        raise NotImplementedError("Conv2d.backward: derive dL/dx, dL/dweight, dL/dbias (see the module docstring)")
