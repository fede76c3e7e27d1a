"""Exercise: the backward of y = max(x, 0) (docs/03-op-derivatives.md, "Elementwise ops").

Derive: dL/dx.  The grader keeps x away from 0, the kink where ReLU has no derivative.

Check:  python3 -m minitorch_nndl.exercises check relu --dir DIR
"""

import numpy as np

import minitorch_nndl as mt


class ReLU(mt.Function):
    """y = max(x, 0) elementwise."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.maximum(x, x.dtype.type(0))

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/dx,)."""
        (x,) = ctx.saved_tensors
        raise NotImplementedError("ReLU.backward: derive dL/dx (see the module docstring)")
