"""Helpers shared by the op families: broadcasting's backward, operand coercion, and
elementwise passes split over the batch."""

from __future__ import annotations

import numbers
from typing import Any

from .. import backend
from ..kernels import parallel
from ..tensor import Tensor


def by_batch_ranges(fn: Any, out: Any, *sources: Any) -> None:
    """``fn(out, *sources)`` on matching ranges of the batch (the first axis), one per thread
    of :mod:`minitorch_nndl.kernels.parallel` (NumPy releases the GIL in its loops); arrays
    under ``parallel.MIN_SPLIT_ELEMENTS`` elements, and 0-d ones, in one call."""
    if out.ndim == 0:
        fn(out, *sources)
        return
    parallel.for_batch_ranges(
        lambda i, j: fn(out[i:j], *(s[i:j] for s in sources)), out.shape[0], out, parallel.MIN_SPLIT_ELEMENTS
    )


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` down to ``shape``: the backward of NumPy broadcasting.

    A broadcast input was used once per copy, so its gradient is the sum over
    the copies: over the leading axes broadcasting added, and over the axes
    where the input had size 1.
    """
    if tuple(grad.shape) == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


def normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, int or tuple, negatives allowed) as a sorted tuple of non-negative axes.

    A 0-d tensor accepts axis 0 or -1 (as in PyTorch) and has no axes to reduce,
    so they normalize to ``()``.
    """
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, numbers.Integral):
        axis = (axis,)
    out = []
    for a in axis:
        if not isinstance(a, numbers.Integral):
            raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}")
        a = int(a)
        if ndim == 0:
            if a not in (0, -1):
                raise ValueError(f"axis {a} is out of range for a 0-d tensor")
            continue
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % ndim)
    return tuple(sorted(set(out)))


def to_float(x: Any) -> Any:
    """Integer and boolean tensors become float32 for ops whose results are fractions
    (mean, exp, division, ...); floating tensors and non-tensors pass through."""
    if isinstance(x, Tensor) and not backend.is_floating(x.dtype):
        return x.to(dtype=backend.default_float)
    return x


def as_tensor_like(value: Any, like: Tensor) -> Tensor:
    """A constant operand (Python/NumPy scalar or array) as a Tensor on ``like``'s device.

    Constants take ``like``'s floating dtype, so a NumPy float64 scalar or an
    integer count never promotes a float32 computation to float64.
    """
    if isinstance(value, Tensor):
        return value
    dtype = like.dtype if backend.is_floating(like.dtype) else None
    if dtype is None:
        probe = backend.np.asarray(backend.to_numpy(value) if backend.is_cuda_array(value) else value)
        dtype = backend.default_float if probe.dtype.kind == "f" else probe.dtype
    return Tensor._wrap(backend.asarray(value, dtype=dtype, device=like.device))


def coerce_pair(a: Any, b: Any, op: str) -> tuple[Tensor, Tensor]:
    """Make two operands Tensors on one device with one dtype, by PyTorch's rules.

    Constants adopt the tensor's dtype; an integer or boolean tensor meeting a
    floating one is cast to the floating dtype (no float64 from int64 labels);
    float32 meeting float64 promotes to float64 (a differentiable cast).
    """
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: at least one operand must be a Tensor")
    if not isinstance(a, Tensor):
        a = as_tensor_like(a, b)
    if not isinstance(b, Tensor):
        b = as_tensor_like(b, a)
    if a.device != b.device:
        raise RuntimeError(f"{op}: expected both tensors on the same device, got {a.device} and {b.device}")
    if a.dtype != b.dtype:
        fa, fb = backend.is_floating(a.dtype), backend.is_floating(b.dtype)
        if fa and not fb:
            b = b.to(dtype=a.dtype)
        elif fb and not fa:
            a = a.to(dtype=b.dtype)
        else:
            common = backend.np.promote_types(a.dtype, b.dtype)
            a, b = a.to(dtype=common), b.to(dtype=common)
    return a, b


def check_broadcast(a: Tensor, b: Tensor, op: str) -> None:
    """Raise a clear error naming the op and both shapes when they do not broadcast."""
    try:
        backend.np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None
