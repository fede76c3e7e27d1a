"""Exercise: the backward of y = a ** b for two tensors (docs/03-op-derivatives.md,
"Elementwise ops").

Both the base and the exponent are tensors (they broadcast together); the grader draws
a positive base, so ln a exists.

Derive: dL/da (the power rule) and dL/db (write a**b as e^(b ln a)), each summed back
to its input's shape with ``unbroadcast`` where the input was broadcast.  The forward
saves y = a**b too: one of the two derivatives can reuse it.

Check:  python3 -m minitorch_nndl.exercises check pow --dir DIR
"""

import numpy as np  # noqa: F401  (you will need it)
from unbroadcast import unbroadcast  # noqa: F401  (yours, from the first exercise: you will need it)

import minitorch_nndl as mt


class Pow(mt.Function):
    """y = a ** b elementwise, with NumPy broadcasting (a > 0 here)."""

    @staticmethod
    def forward(ctx, a, b):
        y = a**b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/da, dL/db), each with its input's shape."""
        a, b, y = ctx.saved_tensors
        raise NotImplementedError("Pow.backward: derive dL/da and dL/db (see the module docstring)")
