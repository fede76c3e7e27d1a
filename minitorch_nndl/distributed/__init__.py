"""``minitorch_nndl.distributed``: data-parallel training over processes, GPUs and machines.

The ranks of a job talk through MPI (``mpi4py``; the ``[mpi]`` extra) for CPU arrays and through
NCCL (CuPy's ``cupy.cuda.nccl``) for CUDA arrays, NCCL's unique id travelling over MPI -- the
design ChainerMN used for Chainer.  Without a launcher every call below works in a world of size
1 and the collectives return at once, so one script runs alone or as ``mpiexec -n 4 python3 ...``.

* :mod:`.world` -- :func:`init`, :func:`is_initialized`, :func:`get_rank`, :func:`get_world_size`,
  :func:`get_local_rank`, :func:`barrier`, :func:`finalize` (and the except hook that aborts every
  rank when one dies, so none hangs);
* :mod:`.collectives` -- :func:`all_reduce` (sum, mean, max, min; in place), :func:`broadcast`,
  :func:`all_gather`, on Tensors and NumPy/CuPy arrays;
* :mod:`.ddp` -- :class:`DistributedDataParallel` (bucketed gradient averaging);
* :mod:`.nccl` -- the CUDA path.

:class:`~minitorch_nndl.data.DistributedSampler` (each rank its shard of the data) and
:class:`~minitorch_nndl.nn.SyncBatchNorm` (batch statistics over all ranks) live with their
families; ``docs/14-data-parallel.md`` explains it all.
"""

from .collectives import REDUCE_OPS, all_gather, all_reduce, broadcast
from .ddp import DistributedDataParallel
from .world import (
    MPI_INSTALL_HINT,
    World,
    abort,
    barrier,
    current_world,
    device_for_rank,
    finalize,
    get_local_rank,
    get_rank,
    get_world_size,
    init,
    is_initialized,
    is_main_process,
    launched_world_size,
)

__all__ = [
    "MPI_INSTALL_HINT",
    "REDUCE_OPS",
    "DistributedDataParallel",
    "World",
    "abort",
    "all_gather",
    "all_reduce",
    "barrier",
    "broadcast",
    "current_world",
    "device_for_rank",
    "finalize",
    "get_local_rank",
    "get_rank",
    "get_world_size",
    "init",
    "is_initialized",
    "is_main_process",
    "launched_world_size",
]
