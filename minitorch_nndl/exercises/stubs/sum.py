"""Exercise: the backward of a sum over axes (docs/03-op-derivatives.md, "Reductions").

``axes`` is a sorted tuple of the axes summed over (maybe all of them, maybe none);
with ``keepdims=False`` those axes are gone from y, with ``keepdims=True`` they stay
with size 1.  ``grad`` = dL/dy has y's shape.

Derive: dL/dx, which has x's shape.  How much does each x element change the sum it
went into?  Then bring ``grad`` back to x's shape: first give it the reduced axes
again (size 1), then broadcast.

Check:  python3 -m minitorch_nndl.exercises check sum --dir DIR
"""

import numpy as np  # noqa: F401  (you will need it)

import minitorch_nndl as mt


class Sum(mt.Function):
    """y = x summed over ``axes``."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return x.sum(axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/dx, None, None): axes and keepdims get no gradient."""
        raise NotImplementedError("Sum.backward: derive dL/dx (see the module docstring)")
