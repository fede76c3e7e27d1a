"""Exercise: the backward of y = ln x (docs/03-op-derivatives.md, "Elementwise ops").

Derive: dL/dx from grad = dL/dy (the grader draws x > 0).

Check:  python3 -m minitorch_nndl.exercises check log --dir DIR
"""

import numpy as np

import minitorch_nndl as mt


class Log(mt.Function):
    """y = ln x elementwise."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/dx,)."""
        (x,) = ctx.saved_tensors
        raise NotImplementedError("Log.backward: derive dL/dx (see the module docstring)")
