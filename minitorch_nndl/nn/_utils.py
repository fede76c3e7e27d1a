"""Small argument helpers shared by the layers."""

from __future__ import annotations

from typing import Any

from .. import backend


def pair(value: Any, name: str) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(3, 5)`` stays; anything else is an error naming the argument."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def float_dtype(dtype: Any, layer: str) -> Any:
    """The layer's parameter dtype (float32 by default); only floating dtypes are allowed."""
    dtype = backend.as_dtype(dtype if dtype is not None else backend.default_float)
    if not backend.is_floating(dtype):
        raise TypeError(f"{layer}: parameters must have a floating-point dtype, got {dtype}")
    return dtype
