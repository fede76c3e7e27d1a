"""Exercise: the backward of y = a / b, with broadcasting (docs/03-op-derivatives.md,
"Elementwise ops").

Derive: dL/da and dL/db for y = a / b (the second is where a sign hides), each
summed back to its input's shape with ``unbroadcast`` where the input was broadcast.

Check:  python3 -m minitorch_nndl.exercises check div --dir DIR
"""

from unbroadcast import unbroadcast  # noqa: F401  (yours, from the first exercise: you will need it)

import minitorch_nndl as mt


class Div(mt.Function):
    """y = a / b elementwise, with NumPy broadcasting (the grader keeps b away from 0)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/da, dL/db), each with its input's shape."""
        a, b = ctx.saved_tensors
        raise NotImplementedError("Div.backward: derive dL/da and dL/db (see the module docstring)")
