"""Grad mode: whether ops record the autograd graph (per thread), and the switches for it.

``no_grad()`` is for inference and optimizer steps; ``enable_grad()`` turns recording
back on inside it; ``set_grad_enabled(mode)`` works as a call and as a context manager.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

_state = threading.local()


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()`` (per thread)."""
    return getattr(_state, "grad_enabled", True)


def _set_mode(mode: bool) -> None:
    _state.grad_enabled = bool(mode)


class _GradMode(contextlib.ContextDecorator):
    """Sets the grad mode on ``__enter__`` and restores the previous one on ``__exit__``.

    Re-entrant: the previous modes are kept on a stack, so one instance may be
    entered recursively (a decorated recursive function) and still restore
    correctly.
    """

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        self._previous.append(is_grad_enabled())
        _set_mode(self.mode)

    def __exit__(self, *exc: object) -> None:
        _set_mode(self._previous.pop())

    def _recreate_cm(self) -> _GradMode:
        # A fresh instance per decorated call: safe across threads and recursion.
        return _GradMode(self.mode)


class set_grad_enabled(_GradMode):  # noqa: N801  (named like a function, as in PyTorch)
    """Switch gradient recording on or off.

    Called as a function it sets the mode at once (``set_grad_enabled(False)``);
    used as a context manager it restores the previous mode on exit::

        with set_grad_enabled(training):
            loss = model(x)
    """

    def __init__(self, mode: bool) -> None:
        super().__init__(mode)
        self._previous.append(is_grad_enabled())
        _set_mode(self.mode)

    def __enter__(self) -> None:
        pass  # the mode was already set by __init__

    def __exit__(self, *exc: object) -> None:
        if self._previous:
            _set_mode(self._previous.pop())


def no_grad(func: Callable | None = None) -> Any:
    """Context manager and decorator: ops inside record no graph (inference, optimizer steps).

    Use as ``with no_grad():``, ``@no_grad()`` or ``@no_grad``.
    """
    if func is not None:
        return _GradMode(False)(func)
    return _GradMode(False)


def enable_grad(func: Callable | None = None) -> Any:
    """Context manager and decorator that turns gradient recording back on (inside ``no_grad``)."""
    if func is not None:
        return _GradMode(True)(func)
    return _GradMode(True)
