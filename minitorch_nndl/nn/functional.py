"""``nn.functional`` (import as ``F``): the stateless ops behind the layers.

A layer (``nn.Conv2d``) owns its parameters and calls a function from here
(``F.conv2d(x, self.weight, self.bias, ...)``).  Use the functions directly when
you manage the tensors yourself.  They are all
defined in :mod:`minitorch_nndl.ops` (``linear`` in ``ops/matmul.py``); ``flatten``
here only changes the default ``start_dim`` to 1, as PyTorch's ``F.flatten`` does not.
"""

from __future__ import annotations

from ..ops.activation import leaky_relu, relu, sigmoid, tanh
from ..ops.conv import conv2d
from ..ops.dropout import dropout
from ..ops.loss import cross_entropy, mse_loss, nll_loss
from ..ops.matmul import linear
from ..ops.norm import batch_norm
from ..ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from ..ops.reduce import log_softmax, softmax
from ..ops.shape import flatten as _flatten
from ..tensor import Tensor


def flatten(x: Tensor, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim..end_dim`` (default: everything but the batch axis)."""
    return _flatten(x, start_dim, end_dim)


__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "cross_entropy",
    "dropout",
    "flatten",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]
