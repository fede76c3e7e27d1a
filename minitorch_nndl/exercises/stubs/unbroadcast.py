"""Exercise: unbroadcast, the backward of NumPy broadcasting (docs/02-reverse-mode.md,
"Broadcasting forces a sum in the backward pass").

``BroadcastTo`` below is complete: its forward repeats ``x`` to a bigger shape without
copying, and its backward hands the gradient to your ``unbroadcast``.

Derive: an input of shape ``shape`` was broadcast to ``grad.shape`` (NumPy's rules:
leading axes added on the left, size-1 axes stretched).  Each element of the input was
used once per copy, so what is dL/dinput, and how do you get it from ``grad``?  The
result must have exactly ``shape``.  mul, div, pow and matmul import this function.

Check:  python3 -m minitorch_nndl.exercises check unbroadcast --dir DIR
"""

import numpy as np

import minitorch_nndl as mt


def unbroadcast(grad, shape):
    """Sum ``grad`` (the gradient of a broadcast result) down to the input's ``shape``."""
    raise NotImplementedError("unbroadcast: write it (the module docstring says what to derive)")


class BroadcastTo(mt.Function):
    """y = x repeated to ``shape`` (given);  dL/dx = unbroadcast(dL/dy, x.shape)."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.shape), None
