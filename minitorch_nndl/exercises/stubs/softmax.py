"""Exercise: the backward of softmax along one axis (docs/03-op-derivatives.md,
"Softmax and log-softmax").

p_i = e^{x_i} / sum_j e^{x_j} along ``axis``; every p_i depends on every x_j of its
slice.

Derive: the Jacobian dp_i/dx_j (two cases, i = j and i != j), then dL/dx_j =
sum_i g_i dp_i/dx_j without building the Jacobian: it is a few elementwise products
and one sum along ``axis`` (keepdims=True, so it broadcasts).

Check:  python3 -m minitorch_nndl.exercises check softmax --dir DIR
"""

import numpy as np

import minitorch_nndl as mt


class Softmax(mt.Function):
    """p = exp(x) / sum(exp(x)) along ``axis``, computed stably (x - max first)."""

    @staticmethod
    def forward(ctx, x, axis):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        p = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(p)
        ctx.axis = axis
        return p

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/dx, None): the axis gets no gradient."""
        (p,) = ctx.saved_tensors
        raise NotImplementedError("Softmax.backward: derive dL/dx (see the module docstring)")
