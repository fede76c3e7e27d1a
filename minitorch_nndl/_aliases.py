"""PyTorch's argument names beside NumPy's: ``dim=`` for ``axis=``, ``keepdim=`` for ``keepdims=``.

This library names an axis the NumPy way (``x.sum(axis=1, keepdims=True)``); someone coming
from PyTorch writes ``x.sum(dim=1, keepdim=True)``.  Every op and Tensor method that takes an
axis is wrapped in :func:`accepts_torch_names`, so both spellings work and mean the same thing.
Giving both spellings of one argument is an error rather than a silent choice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["TORCH_NAMES", "accepts_torch_names"]

#: PyTorch's keyword -> ours
TORCH_NAMES: dict[str, str] = {"dim": "axis", "keepdim": "keepdims"}

F = TypeVar("F", bound=Callable[..., Any])


def accepts_torch_names(fn: F) -> F:
    """Let ``fn`` (which has ``axis``/``keepdims`` parameters) also be called with ``dim=``/``keepdim=``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs:  # positional calls (the common case) pay nothing but this test
            for torch_name, ours in TORCH_NAMES.items():
                if torch_name in kwargs:
                    if ours in kwargs:
                        raise TypeError(
                            f"{fn.__name__}: got both {ours}= and {torch_name}= (two names for one argument); pass one"
                        )
                    kwargs[ours] = kwargs.pop(torch_name)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
