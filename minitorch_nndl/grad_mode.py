"""Grad mode: whether ops record the autograd graph (per thread), and the switches for it.

``no_grad()`` is for inference and optimizer steps; ``enable_grad()`` turns recording
back on inside it; ``set_grad_enabled(mode)`` works as a call and as a context manager.
``inference_mode()`` is ``no_grad()`` plus weights that stay fixed: layers may prepare
them once for every batch inside (:func:`prepared`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

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


class inference_mode(contextlib.ContextDecorator):  # noqa: N801  (named like a function, as in PyTorch)
    """``no_grad()`` for a stretch of inference over fixed weights (evaluating a test set).

    Inside, a layer may compute something from its weights once and reuse it for every later
    batch (:func:`prepared`): a convolution's Winograd-transformed filters with its batch norm
    folded in are made on the first batch instead of on every one.  The promise that the
    weights do not change is kept by NumPy itself: every array something was prepared from
    is read-only until the block ends, so an update inside (an optimizer step, ``p.data[...] = ``)
    raises NumPy's "read-only" error instead of leaving stale prepared weights.  Replacing
    ``p.data`` by another array is fine: what was prepared from the old one is not used.
    A nested block shares the outer one's preparations; CuPy arrays are never prepared
    (they have no read-only flag, and the GPU's transforms are cheap).  Per thread.  The
    preparations live until the block ends (ResNet18's Winograd filters: about 16/9 of
    the stride-1 3x3 weights, about 70 MB in float32).
    """

    def __init__(self) -> None:
        self._no_grad = _GradMode(False)  # re-entrant: keeps its own stack of previous modes
        self._outermost: list[bool] = []  # per entry: whether it opened the thread's block

    def __enter__(self) -> None:
        self._no_grad.__enter__()
        outermost = getattr(_state, "prepared", None) is None
        self._outermost.append(outermost)
        if outermost:
            _state.prepared = {}
            _state.locked = []
            _state.block = object()

    def __exit__(self, *exc: object) -> None:
        if self._outermost.pop():
            for array in _state.locked:
                array.flags.writeable = True
            _state.prepared = _state.locked = _state.block = None
        self._no_grad.__exit__(*exc)

    def _recreate_cm(self) -> inference_mode:
        return inference_mode()


def is_inference_mode() -> bool:
    """True inside ``inference_mode()`` (per thread)."""
    return getattr(_state, "prepared", None) is not None


def inference_block() -> object | None:
    """This thread's outermost ``inference_mode()`` block now (an object that stands for it and for no
    other block), or None outside one: what was made from the weights in one block is for that block."""
    return getattr(_state, "block", None)


def keep_fixed(arrays: Any) -> None:
    """Make the NumPy ``arrays`` read-only until this thread's ``inference_mode()`` block ends (the
    ones already read-only are left as they are): an update inside then raises NumPy's error."""
    if not is_inference_mode():
        raise RuntimeError(
            "keep_fixed: only inside `with inference_mode():`, whose end makes the arrays writable again"
        )
    for array in arrays:
        if isinstance(array, np.ndarray) and array.flags.writeable:
            array.flags.writeable = False
            _state.locked.append(array)


def prepares(array: Any) -> bool:
    """Whether :func:`prepared` keeps values made from ``array`` here: inside ``inference_mode()``
    and a NumPy array.  Layers that choose differently when a preparation is paid once ask this."""
    return is_inference_mode() and isinstance(array, np.ndarray)


def prepared(key: Any, sources: tuple, make: Callable[[], Any]) -> Any:
    """``make()``, computed from the arrays ``sources`` (None entries allowed); inside
    ``inference_mode()``, the value made the first time for ``key`` from these very arrays,
    which stay read-only until the block ends.  Outside, or with a CuPy source, just ``make()``."""
    arrays = [a for a in sources if a is not None]
    if not all(prepares(a) for a in arrays):
        return make()
    cache = _state.prepared
    entry = cache.get(key)
    if entry is not None and len(entry[0]) == len(sources) and all(a is b for a, b in zip(entry[0], sources)):
        return entry[1]
    value = make()
    keep_fixed(arrays)
    cache[key] = (tuple(sources), value)
    return value
