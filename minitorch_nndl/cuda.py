"""``minitorch_nndl.cuda``: is a GPU usable, and how many."""

from __future__ import annotations

from .backend import cuda_device_count, cuda_is_available, synchronize


def is_available() -> bool:
    """True when CuPy is installed and sees a CUDA GPU."""
    return cuda_is_available()


def device_count() -> int:
    return cuda_device_count()


__all__ = ["is_available", "device_count", "synchronize"]
