"""minitorch_nndl: a deep-learning framework written from scratch to be read.

The public API at a glance::

    Tensor, tensor, from_numpy, zeros, ones, full, randn, rand, randint, arange, eye, *_like
    manual_seed, no_grad, enable_grad, is_grad_enabled, inference_mode, gradcheck
    float32, float64, int64, ...          dtypes
    cuda.is_available()                   GPU support through CuPy
    ops: add sub mul div pow neg exp log sqrt abs tanh sigmoid relu leaky_relu clamp
         maximum minimum where sum mean var max min argmax argmin logsumexp
         softmax log_softmax matmul reshape flatten transpose permute squeeze
         unsqueeze expand broadcast_to concatenate (cat) stack pad clone
    axis=/keepdims= or PyTorch's dim=/keepdim=: every op that takes an axis accepts both
    nn, optim, data, models, distributed, train, viz, testing, exercises   (subpackages)
"""

# Subpackages. `train`, `viz`, `testing` and `exercises` load on first use (see __getattr__
# below): they pull in matplotlib / hypothesis, which `import minitorch_nndl` should not pay for.
# `distributed` imports mpi4py only when a launch needs it.
from . import cuda, data, distributed, models, nn, optim
from .autograd import Function
from .backend import bool_, float16, float32, float64, int32, int64, manual_seed, uint8
from .factories import (
    arange,
    empty,
    eye,
    from_numpy,
    full,
    full_like,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, is_inference_mode, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck
from .ops.activation import clamp, leaky_relu, relu, sigmoid, tanh
from .ops.elementwise import (
    abs,
    add,
    div,
    exp,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    sqrt,
    sub,
    where,
)
from .ops.matmul import matmul
from .ops.reduce import argmax, argmin, log_softmax, logsumexp, max, mean, min, softmax, sum, var
from .ops.shape import (
    broadcast_to,
    cat,
    clone,
    concatenate,
    expand,
    flatten,
    pad,
    permute,
    reshape,
    squeeze,
    stack,
    transpose,
    unsqueeze,
)
from .tensor import Tensor

__version__ = "0.1.0"

_LAZY_SUBPACKAGES = ("train", "viz", "testing", "exercises")


def __getattr__(name: str) -> object:
    if name in _LAZY_SUBPACKAGES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'minitorch_nndl' has no attribute {name!r}")


__all__ = [name for name in dir() if not name.startswith("_")] + list(_LAZY_SUBPACKAGES)
