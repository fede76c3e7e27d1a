"""Argument checks shared by the ops, the layers and the data transforms: one wording, one place.

Every check names where it was called from (``where``: an op such as ``"conv2d"`` or a
layer such as ``"Conv2d"``) and the argument, so an error reads
``conv2d: stride must be >= 1, got 0`` wherever it is raised.
"""

from __future__ import annotations

import numbers
from typing import Any

from .. import backend

Pair = tuple[int, int]
REDUCTIONS = ("mean", "sum", "none")


def _is_int(value: Any) -> bool:
    # type(...) is int first: the abstract Integral check is slow, and every op call asks
    return type(value) is int or (isinstance(value, numbers.Integral) and not isinstance(value, bool))


def pair(value: Any, name: str, where: str, minimum: int | None = None) -> Pair:
    """``3 -> (3, 3)``; ``(3, 5)`` stays; optionally checked to be ``>= minimum``."""
    if _is_int(value):
        result = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        result = (int(value[0]), int(value[1]))
    else:
        raise (ValueError if isinstance(value, (tuple, list)) else TypeError)(
            f"{where}: {name} must be an int or a pair of ints, got {value!r}"
        )
    if minimum is not None and min(result) < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value!r}")
    return result


def reduction(value: str, where: str) -> str:
    """One of ``"mean"``, ``"sum"``, ``"none"``."""
    if value not in REDUCTIONS:
        raise ValueError(f"{where}: reduction must be one of {REDUCTIONS}, got {value!r}")
    return value


def label_smoothing(value: float, where: str) -> float:
    """A label-smoothing epsilon in [0, 1]."""
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{where}: label_smoothing must be in [0, 1], got {value}")
    return float(value)


def stem(value: str, where: str) -> str:
    """A model's first layers: ``"cifar"`` (keeps a 32x32 image's detail) or ``"imagenet"``."""
    if value not in ("cifar", "imagenet"):
        raise ValueError(f"{where}: stem must be 'cifar' or 'imagenet', got {value!r}")
    return value


def float_dtype(dtype: Any, where: str) -> Any:
    """A floating dtype (float32 when ``None``): what parameters are made of."""
    dtype = backend.as_dtype(dtype if dtype is not None else backend.default_float)
    if not backend.is_floating(dtype):
        raise TypeError(f"{where}: parameters must have a floating-point dtype, got {dtype}")
    return dtype
