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

How many threads: the environment variable ``MINITORCH_NUM_THREADS`` or
:func:`set_num_threads`; 1 turns the pool off.  By default the pool is used only when
NumPy's BLAS runs single-threaded (``OPENBLAS_NUM_THREADS=1``): a multi-threaded
OpenBLAS keeps its worker threads spinning for a while after every GEMM, and a copy
thread started then has to share a core with a spinning one (measured: an im2row
split over 2 threads right after a GEMM took 9.2 ms instead of 3.1 ms on one thread;
with a single-threaded BLAS the split took 2.3 ms instead of 2.9 ms).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import backend


@functools.lru_cache(maxsize=1)
def openblas() -> Any:
    """The OpenBLAS library NumPy has loaded (a ``ctypes.CDLL``), or None (another BLAS, not Linux)."""
    import ctypes  # noqa: PLC0415

    import numpy  # noqa: F401, PLC0415  (loads NumPy's BLAS, so it appears in the process maps)

    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line})
        return ctypes.CDLL(paths[0]) if paths else None
    except OSError:
        return None


def openblas_call(*names: str) -> Any:
    """The result of the first of the OpenBLAS functions ``names`` (no arguments) that exists, else None.
    NumPy's wheels rename them (``scipy_openblas_get_num_threads64_``), so callers list the variants."""
    library = openblas()
    for name in names if library is not None else ():
        if hasattr(library, name):
            return getattr(library, name)
    return None


def blas_threads() -> int:
    """How many threads NumPy's BLAS uses, asked of OpenBLAS itself when it is loaded,
    else read from the usual environment variables (the CPU count when none is set)."""
    get = openblas_call("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads")
    if get is not None:
        return int(get())
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(variable, "").isdigit():
            return int(os.environ[variable])
    return os.cpu_count() or 1


def _default_threads() -> int:
    chosen = os.environ.get("MINITORCH_NUM_THREADS", "")
    if chosen.isdigit() and int(chosen) >= 1:
        return int(chosen)
    return (os.cpu_count() or 1) if blas_threads() == 1 else 1


_num_threads: int = _default_threads()
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


__all__ = ["blas_threads", "openblas", "openblas_call", "for_batch_ranges", "num_threads", "set_num_threads", "split"]
