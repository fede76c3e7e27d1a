"""Factories: new Tensors from data (``tensor``, ``from_numpy``), filled (``zeros``, ``full``...),
random from the library's seeded generators (``randn``, ``rand``, ``randint``) and ranges.

Every factory takes ``dtype`` (float32 by default for floating data) and ``device``
(``"cpu"``, ``"cuda"``, ``"cuda:N"``) and allocates on that device with it current.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from . import backend
from .tensor import Shape, Tensor


def _shape_arg(shape: tuple) -> Shape:
    """``(2, 3)``, ``((2, 3),)`` or ``([2, 3],)`` -> ``(2, 3)``; negative sizes are an error."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    out = tuple(int(s) for s in shape)
    if any(n < 0 for n in out):
        raise ValueError(f"negative dimension in shape {out}")
    return out


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor from a Python number, nested list, NumPy/CuPy array or Tensor.

    It always owns a copy of the values (like ``torch.tensor``); the ``Tensor(...)``
    constructor instead reuses an array that already has the right dtype and device.
    """
    source = data.data if isinstance(data, Tensor) else data
    t = Tensor(data, dtype=dtype, device=device)
    if t.data is source:
        t.data = t.data.copy()
    return t.requires_grad_(requires_grad)


def from_numpy(array: Any) -> Tensor:
    """A CPU tensor that shares memory with the NumPy ``array``, like ``torch.from_numpy``.

    No copy and no cast (float64 stays float64): writing into one changes the other.
    ``mt.tensor(array)`` makes a copy instead.
    """
    if not isinstance(array, backend.np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"from_numpy: arrays of dtype {array.dtype} are not supported (bool, integer or float only)")
    return Tensor._wrap(array)


def _filled(fill: str, shape: tuple, dtype: Any, device: Any, requires_grad: bool) -> Tensor:
    device = backend.normalize_device(device)
    xp = backend.xp_for(device)
    with backend.device_context(device):
        data = getattr(xp, fill)(_shape_arg(shape), dtype=backend.as_dtype(dtype or backend.default_float))
    return Tensor._wrap(data).requires_grad_(requires_grad)


def zeros(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled("zeros", shape, dtype, device, requires_grad)


def ones(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled("ones", shape, dtype, device, requires_grad)


def empty(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _filled("empty", shape, dtype, device, requires_grad)


def full(
    shape: int | Sequence[int], fill_value: float, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """A tensor of ``shape`` filled with ``fill_value`` (float32 unless ``dtype`` says otherwise)."""
    t = _filled("empty", (shape,), dtype, device, False)
    t.data.fill(fill_value)
    return t.requires_grad_(requires_grad)


def _random(kind: str, shape: tuple, dtype: Any, device: Any, requires_grad: bool) -> Tensor:
    device = backend.normalize_device(device)
    dtype = backend.as_dtype(dtype or backend.default_float)
    rng = backend.rng_for(device)
    with backend.device_context(device):
        if kind == "normal":
            data = rng.standard_normal(
                _shape_arg(shape), dtype=backend.float64 if dtype == backend.float64 else backend.float32
            )
        else:
            data = rng.random(_shape_arg(shape), dtype=backend.float64 if dtype == backend.float64 else backend.float32)
        data = data.astype(dtype, copy=False)
    return Tensor._wrap(data).requires_grad_(requires_grad)


def randn(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the library's seeded generator (see ``manual_seed``)."""
    return _random("normal", shape, dtype, device, requires_grad)


def rand(*shape: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) samples from the library's seeded generator."""
    return _random("uniform", shape, dtype, device, requires_grad)


def randint(low: int, high: int, shape: int | Sequence[int], dtype: Any = None, device: Any = None) -> Tensor:
    """Uniform integers in [low, high) (int64 unless ``dtype`` says otherwise)."""
    device = backend.normalize_device(device)
    with backend.device_context(device):
        data = (
            backend.rng_for(device)
            .integers(low, high, size=_shape_arg((shape,)))
            .astype(backend.as_dtype(dtype or backend.int64), copy=False)
        )
    return Tensor._wrap(data)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None, device: Any = None) -> Tensor:
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        is_int = all(isinstance(v, numbers.Integral) for v in (start, stop, step))
        dtype = backend.int64 if is_int else backend.default_float
    device = backend.normalize_device(device)
    with backend.device_context(device):
        data = backend.xp_for(device).arange(start, stop, step, dtype=backend.as_dtype(dtype))
    return Tensor._wrap(data)


def eye(n: int, dtype: Any = None, device: Any = None) -> Tensor:
    device = backend.normalize_device(device)
    with backend.device_context(device):
        data = backend.xp_for(device).eye(n, dtype=backend.as_dtype(dtype or backend.default_float))
    return Tensor._wrap(data)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value: float, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def randn_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return randn(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def rand_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return rand(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)
