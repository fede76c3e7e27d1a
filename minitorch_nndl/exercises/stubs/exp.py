"""Exercise: the backward of y = e^x (docs/03-op-derivatives.md, "Elementwise ops").

Derive: dL/dx from grad = dL/dy.  The forward saved one array; is it the one you need?

Check:  python3 -m minitorch_nndl.exercises check exp --dir DIR
"""

import numpy as np

import minitorch_nndl as mt


class Exp(mt.Function):
    """y = e^x elementwise."""

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/dx,)."""
        (y,) = ctx.saved_tensors
        raise NotImplementedError("Exp.backward: derive dL/dx (see the module docstring)")
