"""Exercise: the backward of 2-D max pooling (docs/06-pooling.md, "Max pooling").

Each output is the maximum of one KH x KW window of the (-inf padded) input; windows
may overlap (stride < kernel).  The forward (given) records, per output, which kernel
offset k = kh * KW + kw held the maximum (``argmax``).

Derive: dL/dx.  An output's gradient goes to the one input element that was its
maximum, and nothing else; an input that is the maximum of several windows collects
the sum.  Loop over the KH*KW kernel offsets as the forward does (each offset is a
strided view of the padded input, one array operation for all outputs), and cut the
padding off at the end.  The grader draws distinct values, so there are no ties.

Check:  python3 -m minitorch_nndl.exercises check max_pool2d --dir DIR
"""

import numpy as np

import minitorch_nndl as mt


def window(array, kh, kw, stride, out_hw):
    """The (N, C, OH, OW) strided view of ``array`` that kernel offset (kh, kw) reads (given)."""
    (sh, sw), (OH, OW) = stride, out_hw
    return array[:, :, kh : kh + sh * (OH - 1) + 1 : sh, kw : kw + sw * (OW - 1) + 1 : sw]


class MaxPool2d(mt.Function):
    """y = the maximum of each window; ``out_hw`` = (OH, OW) is computed by the caller."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, out_hw):
        (KH, KW), (ph, pw) = kernel, padding
        x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
        out = window(x_padded, 0, 0, stride, out_hw).copy()
        argmax = np.zeros(out.shape, dtype=np.int64)
        for k in range(1, KH * KW):
            candidate = window(x_padded, k // KW, k % KW, stride, out_hw)
            argmax = np.where(candidate > out, k, argmax)  # strict: the first maximum wins a tie
            out = np.maximum(out, candidate)
        ctx.save_for_backward(argmax)
        ctx.geometry = x.shape, x_padded.shape, kernel, stride, padding, out_hw
        return out

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/dx,) with x's shape."""
        (argmax,) = ctx.saved_tensors
        x_shape, padded_shape, kernel, stride, padding, out_hw = ctx.geometry
        raise NotImplementedError("MaxPool2d.backward: derive dL/dx (see the module docstring)")
