"""The NCCL path: collectives on CUDA arrays, GPU to GPU, through CuPy's ``cupy.cuda.nccl``.

NCCL needs every rank to create its communicator with the same *unique id*, drawn by one rank.
MPI is already connecting the ranks, so rank 0 calls ``nccl.get_unique_id()`` (128 bytes) and
broadcasts it with ``MPI_Bcast`` -- the bootstrap ChainerMN and PyTorch's MPI launchers use.  One
communicator per GPU a rank uses, created with that GPU current, on the first collective there.

Every call is enqueued on the current CUDA stream, after the kernels that produced the data and
before those that read the result: no host copy, no host synchronisation.  NCCL has no mean,
so ``"mean"`` is a sum followed by a division on the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from .world import World

__all__ = ["communicator", "all_reduce", "broadcast", "all_gather"]

_UNIQUE_ID_BYTES = 128


def _nccl() -> Any:
    try:
        from cupy.cuda import nccl
    except ImportError as err:
        raise RuntimeError(
            f"distributed: CUDA collectives need CuPy's NCCL (cupy.cuda.nccl), which failed to import: {err}. "
            'Install CuPy with "python3 -m pip install -e .[cuda]", or use init(backend="mpi") to go through the host'
        ) from None
    if not getattr(nccl, "available", False):  # CuPy imported, but found no NCCL library to load
        raise RuntimeError(
            "distributed: CuPy could not load the NCCL library (the nvidia-nccl-cu12 / -cu13 wheels provide it; "
            'see CuPy\'s installation guide), or use init(backend="mpi") to send CUDA arrays through the host'
        )
    return nccl


def _datatype(nccl: Any, dtype: Any) -> int:
    names = {
        "float16": "NCCL_FLOAT16",
        "float32": "NCCL_FLOAT32",
        "float64": "NCCL_FLOAT64",
        "int8": "NCCL_INT8",
        "uint8": "NCCL_UINT8",
        "int32": "NCCL_INT32",
        "uint32": "NCCL_UINT32",
        "int64": "NCCL_INT64",
        "uint64": "NCCL_UINT64",
    }
    name = names.get(np.dtype(dtype).name)
    if name is None:
        raise TypeError(
            f"distributed (NCCL): no NCCL datatype for dtype {np.dtype(dtype).name}: cast the array to float32 "
            "or int32 first (array.astype(...)), or use init(backend='mpi')"
        )
    return getattr(nccl, name)


def communicator(w: World, device: str) -> Any:
    """The NCCL communicator of ``device`` (made on first use: unique id from rank 0 over MPI)."""
    comm = w.nccl.get(device)
    if comm is not None:
        return comm
    nccl = _nccl()
    unique_id = np.zeros(_UNIQUE_ID_BYTES, dtype=np.int8)
    if w.rank == 0:
        unique_id[:] = nccl.get_unique_id()
    w.mpi.Bcast(unique_id, root=0)  # the buffer interface: 128 bytes, no pickling
    with backend.device_context(device):
        comm = nccl.NcclCommunicator(w.size, tuple(int(b) for b in unique_id), w.rank)
    w.nccl[device] = comm
    return comm


def _stream(array: Any) -> int:
    return int(backend.xp_of(array).cuda.get_current_stream().ptr)


def all_reduce(w: World, array: Any, op: str) -> None:
    """Reduce a contiguous CUDA array over the ranks, in place."""
    nccl = _nccl()
    device = backend.device_of(array)
    comm = communicator(w, device)
    nccl_op = {"sum": nccl.NCCL_SUM, "mean": nccl.NCCL_SUM, "max": nccl.NCCL_MAX, "min": nccl.NCCL_MIN}[op]
    with backend.device_context(device):
        ptr = array.data.ptr
        comm.allReduce(ptr, ptr, array.size, _datatype(nccl, array.dtype), nccl_op, _stream(array))
        if op == "mean":
            array /= array.dtype.type(w.size)


def broadcast(w: World, array: Any, src: int) -> None:
    """Copy rank ``src``'s contiguous CUDA array into every rank's, in place."""
    nccl = _nccl()
    device = backend.device_of(array)
    comm = communicator(w, device)
    with backend.device_context(device):
        comm.bcast(array.data.ptr, array.size, _datatype(nccl, array.dtype), src, _stream(array))


def all_gather(w: World, array: Any) -> Any:
    """A new CUDA array ``(world_size, *array.shape)``: row ``r`` is rank ``r``'s ``array``."""
    nccl = _nccl()
    device = backend.device_of(array)
    comm = communicator(w, device)
    xp = backend.xp_of(array)
    with backend.device_context(device):
        out = xp.empty((w.size, *array.shape), dtype=array.dtype)
        comm.allGather(array.data.ptr, out.data.ptr, array.size, _datatype(nccl, array.dtype), _stream(array))
    return out
