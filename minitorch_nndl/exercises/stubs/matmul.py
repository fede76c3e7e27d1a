"""Exercise: the backward of Y = A @ B (docs/03-op-derivatives.md, "Matrix multiplication").

Like ``numpy.matmul``: A and B are matrices, or 1-D vectors (promoted to a row or a
column and the extra axis dropped again), or stacks of matrices whose batch axes
broadcast together.

Derive: dL/dA and dL/dB for the matrix case from Y_ij = sum_k A_ik B_kj; they are
matrix products of ``grad`` with the other operand, transposed.  Then make them work
for the other cases: promote vectors to matrices first, and sum broadcast batch axes
back with ``unbroadcast``.  Each gradient has its operand's shape.

Check:  python3 -m minitorch_nndl.exercises check matmul --dir DIR
"""

import numpy as np  # noqa: F401  (you will need it)
from unbroadcast import unbroadcast  # noqa: F401  (yours, from the first exercise: you will need it)

import minitorch_nndl as mt


class MatMul(mt.Function):
    """Y = A @ B (vectors, matrices, stacks of matrices)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        """Return (dL/dA, dL/dB), each with its operand's shape."""
        a, b = ctx.saved_tensors
        raise NotImplementedError("MatMul.backward: derive dL/dA and dL/dB (see the module docstring)")
