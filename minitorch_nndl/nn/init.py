"""Weight initialisation, in place, with PyTorch's names and formulas.

Why it matters: in a deep network each layer multiplies the signal's variance by
``fan_in * Var(w)`` (times a factor for the nonlinearity).  Choosing
``Var(w) = gain^2 / fan``, the signal neither explodes nor vanishes with depth:

* Xavier/Glorot (tanh, sigmoid):  Var(w) = gain^2 * 2 / (fan_in + fan_out)
* Kaiming/He (ReLU):              Var(w) = gain^2 / fan,   gain = sqrt(2) for ReLU

``fan_in`` = inputs per output unit (``in_features``, or ``in_channels/groups * kh * kw``
for a convolution), ``fan_out`` = outputs per input unit.  Every function fills
``tensor.data`` in place (the Parameter object is unchanged), keeps its dtype, draws
from the library's seeded generator for the tensor's device (``mt.manual_seed``), and
returns the tensor.
"""

from __future__ import annotations

import math
from typing import Any

from .. import backend
from ..grad_mode import no_grad
from ..tensor import Tensor


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor by which ``nonlinearity`` shrinks the standard deviation, inverted.

    linear/conv/sigmoid: 1,  tanh: 5/3,  relu: sqrt(2),
    leaky_relu(a): sqrt(2 / (1 + a^2)) (a defaults to 0.01),  selu: 3/4.
    """
    linear_fns = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "sigmoid"}
    if nonlinearity in linear_fns:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shaped (out, in, *kernel)."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, got shape {tensor.shape}")
    receptive = 1
    for n in tensor.shape[2:]:
        receptive *= n
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _check(tensor: Any, fn: str) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init.{fn}: expected a Tensor, got {type(tensor).__name__}")
    if not backend.is_floating(tensor.dtype):
        raise TypeError(f"init.{fn}: expected a floating-point tensor, got dtype {tensor.dtype}")
    return tensor


def _sample_dtype(tensor: Tensor) -> Any:
    return backend.float64 if tensor.dtype == backend.float64 else backend.float32


def _fill_random(tensor: Tensor, draw: str, scale: float, shift: float) -> Tensor:
    """``tensor <- scale * sample + shift`` with samples from the device's seeded generator."""
    rng = backend.rng_for(tensor.device)
    with backend.device_context(tensor.device):
        sample = getattr(rng, draw)(tensor.shape, dtype=_sample_dtype(tensor))
        tensor.data[...] = (sample * scale + shift).astype(tensor.dtype, copy=False)
    return tensor


@no_grad()
def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with samples of U(a, b)."""
    return _fill_random(_check(tensor, "uniform_"), "random", scale=b - a, shift=a)


@no_grad()
def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with samples of N(mean, std^2)."""
    return _fill_random(_check(tensor, "normal_"), "standard_normal", scale=std, shift=mean)


@no_grad()
def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    _check(tensor, "constant_")
    with backend.device_context(tensor.device):
        tensor.data.fill(val)
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0 (biases; the last BatchNorm of a residual block with ``zero_init_residual``)."""
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1 (BatchNorm scales)."""
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)), i.e. Var = gain^2 * 2 / (fan_in + fan_out)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(_check(tensor, "xavier_uniform_"))
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(_check(tensor, "xavier_normal_"))
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """U(-b, b) with b = gain * sqrt(3 / fan), i.e. std = gain / sqrt(fan).

    ``gain = calculate_gain(nonlinearity, a)``; the default leaky_relu with a=0 is ReLU's
    sqrt(2).  PyTorch's Linear/Conv default is ``a=sqrt(5)``: gain^2 = 1/3, so
    b = 1/sqrt(fan_in).
    """
    fan = _fan(_check(tensor, "kaiming_uniform_"), mode)
    if fan == 0:
        raise ValueError(f"kaiming_uniform_: cannot initialise a tensor with zero {mode} (shape {tensor.shape})")
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan) (He et al. 2015); ResNets use mode="fan_out", "relu"."""
    fan = _fan(_check(tensor, "kaiming_normal_"), mode)
    if fan == 0:
        raise ValueError(f"kaiming_normal_: cannot initialise a tensor with zero {mode} (shape {tensor.shape})")
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std)


def default_layer_init_(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's default for ``Linear`` and ``Conv2d``: W ~ ``kaiming_uniform_(a=sqrt(5))``, which is
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the bias from the same interval."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(_fan(weight, "fan_in"))
        uniform_(bias, -bound, bound)


__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "constant_",
    "zeros_",
    "ones_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "default_layer_init_",
]
