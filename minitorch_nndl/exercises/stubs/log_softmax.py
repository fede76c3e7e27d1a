"""Exercise: the backward of log-softmax along one axis (docs/03-op-derivatives.md,
"Softmax and log-softmax").

y_i = x_i - log sum_j e^{x_j} along ``axis``.

Derive: dy_i/dx_j, then dL/dx = ... in one line from ``grad``, softmax(x) (which is
e^y: no need to recompute it from x) and one sum along ``axis`` (keepdims=True).

Check:  python3 -m minitorch_nndl.exercises check log_softmax --dir DIR
"""

import numpy as np  # noqa: F401  (you will need it)

import minitorch_nndl as mt


class LogSoftmax(mt.ops.reduce.LogSoftmax):  # the forward is ours: ops/reduce.py
    """y = x - logsumexp(x) along ``axis``, computed stably (x - max first).

    The forward, inherited from the library, saves ``y`` (``ctx.saved_tensors``) and
    ``ctx.axis``.
    """

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/dx, None)."""
        (y,) = ctx.saved_tensors
        raise NotImplementedError("LogSoftmax.backward: derive dL/dx (see the module docstring)")
