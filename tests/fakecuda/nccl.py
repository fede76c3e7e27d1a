"""A strict stand-in for ``cupy.cuda.nccl``: NCCL's calls checked, the bytes moved by MPI on the host.

The API is CuPy's (``cupy_backends/cuda/libs/nccl.pyx`` in CuPy 14): ``get_unique_id()`` (a tuple of
128 signed bytes), ``NcclCommunicator(ndev, commId, rank)`` with ``allReduce``, ``bcast``,
``broadcast``, ``allGather``, ``reduce``, ``abort``, ``destroy``, ``rank_id``, ``size``,
``device_id``, and the ``NCCL_*`` datatype and operation constants with NCCL's values.

Each rank of an ``mpiexec`` job that installed the stand-in gets one fake communicator; a
collective is carried out with the same collective of ``mpi4py`` on the arrays' host memory, so
the ranks really exchange data.  What the stand-in refuses (real NCCL would corrupt memory, hang,
or fail later):

* a pointer that is not the start of a live stand-in array (``a.data.ptr``), an array on another
  device than the communicator's, or one on another device than the current one;
* a count larger than the array, a datatype that is not the array's dtype, an unknown operation;
* a stream pointer that is not a stream of the stand-in; a call on a destroyed or aborted
  communicator; communicators of one job made with different unique ids or world sizes.

``CALLS`` counts the calls by name, so a test can check that the NCCL path ran.
"""

from __future__ import annotations

import collections
import os
import weakref
from typing import Any

import numpy as np

from . import core

available = True
CALLS: collections.Counter[str] = collections.Counter()

# NCCL's enums (nccl.h): datatypes and reduction operations.
NCCL_INT8 = NCCL_CHAR = 0
NCCL_UINT8 = 1
NCCL_INT32 = NCCL_INT = 2
NCCL_UINT32 = 3
NCCL_INT64 = 4
NCCL_UINT64 = 5
NCCL_FLOAT16 = NCCL_HALF = 6
NCCL_FLOAT32 = NCCL_FLOAT = 7
NCCL_FLOAT64 = NCCL_DOUBLE = 8
NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN, NCCL_AVG = 0, 1, 2, 3, 4

_DTYPES = {
    NCCL_INT8: np.int8,
    NCCL_UINT8: np.uint8,
    NCCL_INT32: np.int32,
    NCCL_UINT32: np.uint32,
    NCCL_INT64: np.int64,
    NCCL_UINT64: np.uint64,
    NCCL_FLOAT16: np.float16,
    NCCL_FLOAT32: np.float32,
    NCCL_FLOAT64: np.float64,
}
_UNIQUE_ID_BYTES = 128

# Every stand-in array whose ``.data.ptr`` was taken: pointer -> the array (weakly).
_BUFFERS: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()


def register_buffer(ptr: int, array: Any) -> None:
    """Called by ``ndarray.data``: the pointer handed out now belongs to ``array``."""
    _BUFFERS[ptr] = array


class NcclError(RuntimeError):
    pass


def get_version() -> int:
    return 22605


def get_build_version() -> int:
    return 22605


def get_unique_id() -> tuple[int, ...]:
    CALLS["get_unique_id"] += 1
    return tuple(int(b) for b in np.frombuffer(os.urandom(_UNIQUE_ID_BYTES), dtype=np.int8))


def groupStart() -> None:  # noqa: N802  (NCCL's name)
    CALLS["groupStart"] += 1


def groupEnd() -> None:  # noqa: N802
    CALLS["groupEnd"] += 1


def _mpi() -> Any:
    from mpi4py import MPI

    return MPI


class NcclCommunicator:
    """One rank's communicator, bound to the device current when it was made."""

    def __init__(self, ndev: int, commId: tuple, rank: int) -> None:  # noqa: N803  (CuPy's name)
        CALLS["NcclCommunicator"] += 1
        if not isinstance(commId, tuple) or len(commId) != _UNIQUE_ID_BYTES:
            raise TypeError(f"fakecuda.nccl: commId must be a tuple of {_UNIQUE_ID_BYTES} ints (get_unique_id())")
        if not all(isinstance(b, int) and -128 <= b <= 127 for b in commId):
            raise NcclError("NCCL_ERROR_INVALID_ARGUMENT: commId holds values that are not signed bytes")
        if not 0 <= rank < ndev:
            raise NcclError(f"NCCL_ERROR_INVALID_ARGUMENT: rank {rank} outside 0..{ndev - 1}")
        self._ndev, self._rank, self._device = int(ndev), int(rank), core.current_device()
        self._alive = True
        self._mpi_comm = None
        if ndev > 1:
            comm = _mpi().COMM_WORLD
            if comm.Get_size() != ndev or comm.Get_rank() != rank:
                raise NcclError(
                    f"NCCL_ERROR_INVALID_USAGE: rank {rank} of {ndev}, but MPI says {comm.Get_rank()} of "
                    f"{comm.Get_size()} (the stand-in runs one communicator per MPI rank)"
                )
            ids = np.empty((ndev, _UNIQUE_ID_BYTES), dtype=np.int8)
            comm.Allgather(np.array(commId, dtype=np.int8), ids)
            if not (ids == ids[0]).all():
                raise NcclError("NCCL_ERROR_INVALID_USAGE: the ranks were given different unique ids")
            self._mpi_comm = comm

    # -------------------------------------------------------------- checks
    def _check(self, call: str, stream: int) -> None:
        CALLS[call] += 1
        if not self._alive:
            raise NcclError(f"NCCL_ERROR_INVALID_USAGE: {call} on a destroyed or aborted communicator")
        if core.current_device() != self._device:
            raise NcclError(
                f"NCCL_ERROR_INVALID_USAGE: {call} while device {core.current_device()} is current, but the "
                f"communicator belongs to device {self._device}"
            )
        if not isinstance(stream, int) or (stream != 0 and not 0x1000 < stream <= core.Stream._next_ptr):
            raise NcclError(f"NCCL_ERROR_INVALID_ARGUMENT: {call}: stream {stream!r} is not a stream pointer")

    def _buffer(self, call: str, ptr: int, count: int, datatype: int) -> np.ndarray:
        """The first ``count`` elements of the array that starts at ``ptr`` (a view of its host memory)."""
        if datatype not in _DTYPES:
            raise NcclError(f"NCCL_ERROR_INVALID_ARGUMENT: {call}: unknown datatype {datatype!r}")
        array = _BUFFERS.get(ptr)
        if array is None:
            raise NcclError(f"NCCL_ERROR_INVALID_ARGUMENT: {call}: {ptr:#x} is not the start of a device array")
        host = array._a
        if array._dev != self._device:
            raise NcclError(
                f"NCCL_ERROR_INVALID_ARGUMENT: {call}: the array is on device {array._dev}, the communicator on "
                f"{self._device}"
            )
        if host.dtype != _DTYPES[datatype]:
            raise NcclError(
                f"NCCL_ERROR_INVALID_ARGUMENT: {call}: datatype {np.dtype(_DTYPES[datatype]).name} but the array "
                f"holds {host.dtype}"
            )
        if not host.flags.c_contiguous or count > host.size:
            raise NcclError(
                f"NCCL_ERROR_INVALID_ARGUMENT: {call}: count {count} over a "
                f"{'non-contiguous ' if not host.flags.c_contiguous else ''}array of {host.size} elements"
            )
        return host.reshape(-1)[:count]

    def _op(self, call: str, op: int) -> Any:
        ops = {NCCL_SUM: "SUM", NCCL_PROD: "PROD", NCCL_MAX: "MAX", NCCL_MIN: "MIN"}
        if op not in ops:
            raise NcclError(f"NCCL_ERROR_INVALID_ARGUMENT: {call}: operation {op!r} (the stand-in has no NCCL_AVG)")
        return getattr(_mpi(), ops[op])

    # -------------------------------------------------------------- collectives
    def _reduction(self, call: str, sendbuf: int, recvbuf: int, count: int, datatype: int, op: int, stream: int):
        """What allReduce and reduce check and take: (send, recv, MPI op), or a NcclError."""
        self._check(call, stream)
        send = self._buffer(call, sendbuf, count, datatype)
        return send, self._buffer(call, recvbuf, count, datatype), self._op(call, op)

    def allReduce(self, sendbuf: int, recvbuf: int, count: int, datatype: int, op: int, stream: int) -> None:  # noqa: N802
        send, recv, mpi_op = self._reduction("allReduce", sendbuf, recvbuf, count, datatype, op, stream)
        if self._mpi_comm is None:
            recv[...] = send
        else:
            self._mpi_comm.Allreduce(send.copy(), recv, op=mpi_op)

    def reduce(self, sendbuf: int, recvbuf: int, count: int, datatype: int, op: int, root: int, stream: int) -> None:
        send, recv, mpi_op = self._reduction("reduce", sendbuf, recvbuf, count, datatype, op, stream)
        if self._mpi_comm is None:
            recv[...] = send
        else:
            self._mpi_comm.Reduce(send.copy(), recv if self._rank == root else None, op=mpi_op, root=root)

    def bcast(self, buff: int, count: int, datatype: int, root: int, stream: int) -> None:
        self._check("bcast", stream)
        buf = self._buffer("bcast", buff, count, datatype)
        if not 0 <= root < self._ndev:
            raise NcclError(f"NCCL_ERROR_INVALID_ARGUMENT: bcast: root {root} outside 0..{self._ndev - 1}")
        if self._mpi_comm is not None:
            self._mpi_comm.Bcast(buf, root=root)

    def broadcast(self, sendbuff: int, recvbuff: int, count: int, datatype: int, root: int, stream: int) -> None:
        self._check("broadcast", stream)
        send = self._buffer("broadcast", sendbuff, count, datatype)
        recv = self._buffer("broadcast", recvbuff, count, datatype)
        if self._rank == root:
            recv[...] = send
        if self._mpi_comm is not None:
            self._mpi_comm.Bcast(recv, root=root)

    def allGather(self, sendbuf: int, recvbuf: int, count: int, datatype: int, stream: int) -> None:  # noqa: N802
        self._check("allGather", stream)
        send = self._buffer("allGather", sendbuf, count, datatype)
        recv = self._buffer("allGather", recvbuf, count * self._ndev, datatype)
        if self._mpi_comm is None:
            recv[...] = send
        else:
            self._mpi_comm.Allgather(send.copy(), recv)

    # -------------------------------------------------------------- the communicator
    def rank_id(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._ndev

    def device_id(self) -> int:
        return self._device

    def destroy(self) -> None:
        CALLS["destroy"] += 1
        self._alive = False

    def abort(self) -> None:
        CALLS["abort"] += 1
        self._alive = False
