"""Collectives on Tensors and raw arrays: ``all_reduce``, ``broadcast``, ``all_gather``.

Every rank calls the same collectives in the same order with arrays of the same shape and dtype
(the SPMD contract: one program, many data).  In a world of size 1 they return at once.

Where the bytes go:

* a NumPy array (a CPU Tensor): MPI's buffer interface, ``comm.Allreduce(MPI.IN_PLACE, array)``
  -- mpi4py hands the array's memory to MPI, which reads and writes it in place; nothing is
  pickled, so the cost is the bytes on the wire;
* a CuPy array (a CUDA Tensor): NCCL (:mod:`.nccl`), on the device and on the current stream;
  with ``init(backend="mpi")`` it goes through host memory instead (a copy each way).

``all_reduce`` and ``broadcast`` work in place and return their argument; ``all_gather`` returns a
new array (a Tensor for a Tensor) with a leading axis of length ``world_size``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor
from . import nccl
from .world import World, current_world

__all__ = ["all_reduce", "broadcast", "all_gather", "REDUCE_OPS"]

REDUCE_OPS = ("sum", "mean", "max", "min")


def _array_of(x: Any, op: str) -> Any:
    """The array behind ``x`` (a Tensor's ``data``), checked for what a collective needs."""
    array = x.data if isinstance(x, Tensor) else x
    if not (isinstance(array, np.ndarray) or backend.is_cuda_array(array)):
        raise TypeError(f"distributed.{op}: expected a Tensor, a NumPy or a CuPy array, got {type(x).__name__}")
    if array.dtype.kind not in "fiu":
        raise TypeError(f"distributed.{op}: expected a numeric array, got dtype {array.dtype}")
    return array


def _mpi_op(w: World, op: str) -> Any:
    from mpi4py import MPI

    return {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]


def _uses_nccl(w: World, array: Any) -> bool:
    return backend.is_cuda_array(array) and w.backend != "mpi"


def _in_place(array: Any, fn: Any) -> None:
    """Run ``fn(contiguous_array)`` on ``array`` itself or, when it is a strided view, on a copy written back."""
    if array.flags.c_contiguous:
        fn(array)
        return
    xp = backend.xp_of(array)
    tmp = xp.ascontiguousarray(array)
    fn(tmp)
    array[...] = tmp


def _through_host(array: Any, fn: Any) -> None:
    """``fn`` on a NumPy copy of a CUDA array, copied back (the ``backend="mpi"`` path for CUDA arrays)."""
    host = np.ascontiguousarray(backend.to_numpy(array))
    fn(host)
    with backend.device_context(backend.device_of(array)):
        array[...] = backend.xp_of(array).asarray(host)


def all_reduce(x: Any, op: str = "sum") -> Any:
    """Reduce ``x`` over the ranks, in place: every rank ends with the sum (mean, max, min) of all ranks' ``x``.

    ``x``: a Tensor or a NumPy/CuPy array (same shape and dtype on every rank).  ``"mean"`` needs a
    floating dtype.  Returns ``x``.
    """
    if op not in REDUCE_OPS:
        raise ValueError(f"distributed.all_reduce: op must be one of {', '.join(REDUCE_OPS)}, got {op!r}")
    array = _array_of(x, "all_reduce")
    if op == "mean" and array.dtype.kind != "f":
        raise TypeError(
            f"distributed.all_reduce: op='mean' needs a floating dtype, got {array.dtype}: "
            "use op='sum' and divide by get_world_size(), or cast to float first"
        )
    w = current_world()
    if w.size == 1:
        return x
    if _uses_nccl(w, array):
        _in_place(array, lambda a: nccl.all_reduce(w, a, op))
        return x

    def reduce(a: np.ndarray) -> None:
        w.mpi.Allreduce(_in_place_flag(), a, op=_mpi_op(w, op))
        if op == "mean":
            a /= a.dtype.type(w.size)

    if backend.is_cuda_array(array):
        _through_host(array, reduce)
    else:
        _in_place(array, reduce)
    return x


def broadcast(x: Any, src: int = 0) -> Any:
    """Copy rank ``src``'s ``x`` into ``x`` on every rank, in place; returns ``x``."""
    array = _array_of(x, "broadcast")
    w = current_world()
    if not 0 <= src < w.size:
        raise ValueError(f"distributed.broadcast: src must be a rank in 0..{w.size - 1}, got {src}")
    if w.size == 1:
        return x
    if _uses_nccl(w, array):
        _in_place(array, lambda a: nccl.broadcast(w, a, src))
    elif backend.is_cuda_array(array):
        _through_host(array, lambda a: w.mpi.Bcast(a, root=src))
    else:
        _in_place(array, lambda a: w.mpi.Bcast(a, root=src))
    return x


def all_gather(x: Any) -> Any:
    """Every rank's ``x`` stacked: shape ``(world_size, *x.shape)``, row ``r`` from rank ``r``.

    A new array on ``x``'s device (a Tensor without gradient for a Tensor).
    """
    array = _array_of(x, "all_gather")
    w = current_world()
    xp = backend.xp_of(array)
    if w.size == 1:
        with backend.device_context(backend.device_of(array)):
            out = xp.ascontiguousarray(array)[None].copy()
    elif _uses_nccl(w, array):
        with backend.device_context(backend.device_of(array)):
            out = nccl.all_gather(w, xp.ascontiguousarray(array))
    else:
        host = np.ascontiguousarray(backend.to_numpy(array))
        gathered = np.empty((w.size, *host.shape), dtype=host.dtype)
        w.mpi.Allgather(host, gathered)
        out = gathered if xp is np else backend.to_device(gathered, backend.device_of(array))
    return Tensor._wrap(out) if isinstance(x, Tensor) else out


def _in_place_flag() -> Any:
    from mpi4py import MPI

    return MPI.IN_PLACE
