"""Exercise: the backward of y = a * b, with broadcasting (docs/03-op-derivatives.md,
"Elementwise ops").

``a`` and ``b`` may have different shapes that broadcast together (one may be 0-d);
``grad`` = dL/dy has y's shape.

Derive: dL/da and dL/db.  Each must have its own input's shape: where an input was
broadcast, sum the copies back with ``unbroadcast`` (your first exercise).

Check:  python3 -m minitorch_nndl.exercises check mul --dir DIR
"""

from unbroadcast import unbroadcast  # noqa: F401  (yours, from the first exercise: you will need it)

import minitorch_nndl as mt


class Mul(mt.Function):
    """y = a * b elementwise, with NumPy broadcasting."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/da, dL/db), each with its input's shape."""
        a, b = ctx.saved_tensors
        raise NotImplementedError("Mul.backward: derive dL/da and dL/db (see the module docstring)")
