"""Every CPU core for the copies around the GEMMs: a small thread pool over batch ranges.

BLAS already runs a matrix product on all cores, but the copies that build and
scatter the column matrices (:func:`~minitorch_nndl.kernels.arrays.im2row`,
:func:`~minitorch_nndl.kernels.arrays.row2im`) and the elementwise passes of batch
norm are single NumPy calls, and one NumPy call runs on one core.  NumPy releases
Python's global interpreter lock inside such copies and ufunc loops, so splitting
the batch into one contiguous range per core and running the ranges in threads
really does use all the cores.

:func:`for_batch_ranges` is the one entry point: ``fn(start, stop)`` is called on
disjoint ranges covering ``range(n)``, the last one in the calling thread, and it
returns when all are done (an exception in any range is raised in the caller).
CuPy arrays never go through the pool: GPU kernels are asynchronous already, and a
thread would have to enter the right device first.

The number of threads is ``os.cpu_count()`` unless the environment variable
``MINITORCH_NUM_THREADS`` or :func:`set_num_threads` says otherwise; 1 turns the pool off.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import backend

_num_threads: int = max(1, int(os.environ.get("MINITORCH_NUM_THREADS") or 0) or os.cpu_count() or 1)
_pool: ThreadPoolExecutor | None = None


def num_threads() -> int:
    """How many threads :func:`for_batch_ranges` splits work over (1: no pool)."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (>= 1) for the batch-parallel copies from now on."""
    global _num_threads, _pool
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    if _pool is not None and n != _num_threads:
        _pool.shutdown(wait=True)
        _pool = None
    _num_threads = n


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_num_threads - 1, thread_name_prefix="minitorch")
    return _pool


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """``range(n)`` as at most ``parts`` contiguous (start, stop) ranges of nearly equal length."""
    parts = max(1, min(parts, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


def for_batch_ranges(fn: Callable[[int, int], Any], n: int, array: Any = None) -> None:
    """Call ``fn(start, stop)`` on disjoint ranges covering ``range(n)``, one per thread.

    ``array`` (any array the work touches) tells NumPy work, which is split over the
    threads, from CuPy work, which runs as one call ``fn(0, n)``.
    """
    if n <= 1 or _num_threads == 1 or (array is not None and backend.is_cuda_array(array)):
        fn(0, n)
        return
    *others, mine = split(n, _num_threads)
    futures = [_executor().submit(fn, start, stop) for start, stop in others]
    fn(*mine)
    for future in futures:
        future.result()  # waits, and re-raises an exception from that range here


__all__ = ["for_batch_ranges", "num_threads", "set_num_threads", "split"]
