"""Exercise: the backward of softmax along one axis (docs/03-op-derivatives.md,
"Softmax and log-softmax").

p_i = e^{x_i} / sum_j e^{x_j} along ``axis``; every p_i depends on every x_j of its
slice.

Derive: the Jacobian dp_i/dx_j (two cases, i = j and i != j), then dL/dx_j =
sum_i g_i dp_i/dx_j without building the Jacobian: it is a few elementwise products
and one sum along ``axis`` (keepdims=True, so it broadcasts).

Check:  python3 -m minitorch_nndl.exercises check softmax --dir DIR
"""

import numpy as np  # noqa: F401  (you will need it)

import minitorch_nndl as mt


class Softmax(mt.ops.reduce.Softmax):  # the forward is ours: ops/reduce.py
    """p = exp(x) / sum(exp(x)) along ``axis``, computed stably (x - max first).

    The forward, inherited from the library, saves ``p`` (``ctx.saved_tensors``) and
    ``ctx.axis``: all the backward needs.
    """

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/dx, None): the axis gets no gradient."""
        (p,) = ctx.saved_tensors
        raise NotImplementedError("Softmax.backward: derive dL/dx (see the module docstring)")
