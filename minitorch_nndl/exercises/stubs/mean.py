"""Exercise: the backward of a mean over axes (docs/03-op-derivatives.md, "Reductions").

The mean is your sum divided by n, the number of elements each output averages: the
forward (given) calls your ``Sum.forward``, which also records ``ctx.shape``,
``ctx.axes`` (a sorted tuple, maybe all axes, maybe none) and ``ctx.keepdims``.

Derive: dL/dx, with x's shape.  What is n when several axes are reduced, and where
does it go in the gradient?  (``Sum.backward`` from your sum exercise may do most of
the work.)

Check:  python3 -m minitorch_nndl.exercises check mean --dir DIR
"""

import numpy as np  # noqa: F401  (you will need it)
from sum import Sum  # noqa: F401  (yours, from the sum exercise)

import minitorch_nndl as mt


class Mean(mt.Function):
    """y = x averaged over ``axes``: the sum over them, divided by how many elements each sum adds."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        total = Sum.forward(ctx, x, axes, keepdims)
        n = int(np.prod([x.shape[a] for a in axes]))
        return total / x.dtype.type(n)

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/dx, None, None)."""
        raise NotImplementedError("Mean.backward: derive dL/dx (see the module docstring)")
