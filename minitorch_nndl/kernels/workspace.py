"""Scratch buffers kept between calls, so large temporaries do not fault in fresh pages every step.

A training step builds the same large temporaries again and again (the column
matrix of every convolution, batch norm's squared deviations).  Allocated fresh,
each one of more than a few hundred kilobytes is a new ``mmap`` from the C library;
the kernel hands it out as untouched pages, and the first write to every 4 KiB page
is a *page fault* that costs about as much as the write itself.  A workspace keeps
one flat buffer per purpose and thread, grows it when a larger one is asked for,
and hands out views of its beginning: after the first step nothing is faulted in.

Rules for callers: a scratch array is valid until the next :func:`scratch` call
with the same ``name`` in the same thread, so it must never be returned to the
user or saved for backward (copy what must outlive the call).  CuPy arrays come
from CuPy's memory pool, which already reuses its blocks, so on the GPU
:func:`scratch` is a plain ``empty``.  :func:`release` drops every buffer.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .. import backend

_buffers: dict[tuple[str, int, np.dtype], np.ndarray] = {}
_lock = threading.Lock()


def scratch(name: str, shape: tuple[int, ...], dtype: Any, like: Any = None) -> Any:
    """An uninitialized array of ``shape`` and ``dtype`` from the workspace ``name`` of this thread.

    ``like`` is an array of the backend to allocate on (NumPy when None); a CuPy
    array gives a fresh ``cupy.empty`` on the current device.
    """
    dtype = np.dtype(dtype)
    size = 1
    for extent in shape:
        size *= int(extent)
    if like is not None and backend.is_cuda_array(like):
        return backend.xp_of(like).empty(shape, dtype=dtype)
    key = (name, threading.get_ident(), dtype)
    buffer = _buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = np.empty(max(size, 1), dtype=dtype)
        with _lock:
            _buffers[key] = buffer
    return buffer[:size].reshape(shape)


_zeroed: dict[tuple[str, int, tuple[int, ...], np.dtype], np.ndarray] = {}


def zeroed(name: str, shape: tuple[int, ...], dtype: Any, like: Any = None) -> Any:
    """An array of ``shape`` and ``dtype`` that was all zeros when it was made, kept per ``name``,
    shape and thread: for callers that write the same part of it on every call (the inside of a
    zero-padded copy), so the rest is still zero and is not cleared again.  On a GPU, fresh zeros."""
    dtype = np.dtype(dtype)
    if like is not None and backend.is_cuda_array(like):
        return backend.xp_of(like).zeros(shape, dtype=dtype)
    key = (name, threading.get_ident(), tuple(int(extent) for extent in shape), dtype)
    array = _zeroed.get(key)
    if array is None:
        array = np.zeros(key[2], dtype=dtype)
        with _lock:
            _zeroed[key] = array
    return array


def nbytes() -> int:
    """Bytes the workspace holds now, over all names and threads."""
    return sum(buffer.nbytes for buffer in (*_buffers.values(), *_zeroed.values()))


def release() -> None:
    """Drop every scratch and zeroed buffer (they are allocated again on the next use)."""
    with _lock:
        _buffers.clear()
        _zeroed.clear()


__all__ = ["nbytes", "release", "scratch", "zeroed"]
