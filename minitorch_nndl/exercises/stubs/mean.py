"""Exercise: the backward of a mean over axes (docs/03-op-derivatives.md, "Reductions").

As for ``sum``: ``axes`` is a sorted tuple (maybe all axes, maybe none), and
``keepdims`` says whether y keeps them with size 1.

Derive: dL/dx, with x's shape.  The mean is the sum divided by n: what is n when
several axes are reduced, and where does it go in the gradient?

Check:  python3 -m minitorch_nndl.exercises check mean --dir DIR
"""

import numpy as np  # noqa: F401  (you will need it)

import minitorch_nndl as mt


class Mean(mt.Function):
    """y = x averaged over ``axes``."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return x.mean(axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/dx, None, None)."""
        raise NotImplementedError("Mean.backward: derive dL/dx (see the module docstring)")
