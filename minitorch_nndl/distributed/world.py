"""The process group: who this process is among the ranks of one training job, and how they talk.

One training job is ``p`` copies of the same script (ranks ``0..p-1``) started by a launcher:
``mpiexec -n p python3 train.py`` on one machine or on the hosts of a host file, ``srun`` under
Slurm.  :func:`init` finds out what the launcher made of this process:

* **No launcher** (plain ``python3 train.py``, or a launcher that started one rank): a world of
  size 1.  MPI is not loaded, every collective is a no-op, and the same script runs alone.
* **Several ranks**: MPI (``mpi4py``) connects them.  It carries the CPU arrays (its buffer
  interface: the bytes of a NumPy array go straight to the wire, no pickling), and for CUDA arrays
  it bootstraps NCCL (:mod:`.nccl`): rank 0 draws NCCL's unique id and broadcasts it over MPI.

The launcher is recognised by the variables it sets (``PMI_SIZE`` for MPICH's Hydra,
``OMPI_COMM_WORLD_SIZE`` for Open MPI, ``SLURM_NTASKS`` with ``SLURM_PROCID`` under ``srun``), so
importing this module, or calling :func:`init` alone, never needs mpi4py.

Once a multi-rank world is up, :func:`init` also installs a global except hook (ChainerMN's idea):
a rank that dies of an unhandled exception prints its traceback and *aborts the whole job*
(``MPI_Abort``), so the others, waiting for it in a collective, exit with an error instead of
hanging forever.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from typing import Any

__all__ = [
    "MPI_INSTALL_HINT",
    "World",
    "init",
    "is_initialized",
    "get_rank",
    "get_world_size",
    "get_local_rank",
    "barrier",
    "finalize",
    "abort",
    "current_world",
    "launched_world_size",
    "device_for_rank",
    "is_main_process",
]

MPI_INSTALL_HINT = 'python3 -m pip install -e ".[mpi]"'
BACKENDS = ("auto", "mpi", "nccl")

# What launchers put in the environment of each rank: (variable holding the world size, its rank).
_LAUNCHER_VARIABLES = (
    ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),  # Open MPI's mpiexec / mpirun
    ("PMI_SIZE", "PMI_RANK"),  # MPICH's Hydra (mpiexec), Intel MPI
    ("PMIX_SIZE", "PMIX_RANK"),  # PMIx launchers
    ("SLURM_NTASKS", "SLURM_PROCID"),  # Slurm's srun (SLURM_PROCID is only set for a task it started)
)


def launched_world_size() -> int:
    """How many ranks the launcher started (1 without a launcher), read from its environment variables."""
    for size_var, rank_var in _LAUNCHER_VARIABLES:
        size, rank = os.environ.get(size_var), os.environ.get(rank_var)
        if size and rank is not None and size.isdigit():
            return int(size)
    return 1


def _import_mpi(backend: str) -> Any:
    """``mpi4py.MPI``, or one clear line saying how to get it."""
    try:
        from mpi4py import MPI
    except ImportError as err:
        size = launched_world_size()
        why = f"this process was started as one of {size} ranks" if size > 1 else f"init(backend={backend!r})"
        raise RuntimeError(
            f"distributed: {why}, which needs mpi4py and an MPI library ({err}); install them with: {MPI_INSTALL_HINT}"
        ) from None
    return MPI


def _mpiexec_claim() -> tuple[str, int] | None:
    """``(variable, world size)`` as an ``mpiexec`` set them (Slurm's left out), or None.

    The checks below use these only: a Slurm batch script may run one process of an allocation of
    several tasks without ``srun``, and it is not a rank of anything.
    """
    for size_var, rank_var in _LAUNCHER_VARIABLES[:-1]:
        size = os.environ.get(size_var, "")
        if size.isdigit() and os.environ.get(rank_var) is not None:
            return size_var, int(size)
    return None


def _check_launcher_agrees(size: int) -> None:
    """One line when ``mpiexec`` started several ranks but MPI sees another world (each rank would train alone).

    That happens when ``mpiexec`` belongs to another MPI than the one mpi4py was built with (Open MPI's
    ``mpirun`` with MPICH's wheel, say): every rank is then a world of its own, trains a model of its
    own and writes the same files.
    """
    claim = _mpiexec_claim()
    if claim is not None and claim[1] != size:
        var, launched = claim
        raise RuntimeError(
            f"distributed.init: the launcher started {launched} ranks ({var}={launched}) but MPI sees a world "
            f"of {size}: this mpiexec is from another MPI than mpi4py's; use the mpiexec of the MPI that "
            "`python3 -m mpi4py --mpi-lib-version` names, or reinstall mpi4py against this mpiexec's MPI"
        )


class World:
    """The ranks of the job as this process sees them: rank, size, local rank and the communicators.

    ``mpi`` is mpi4py's ``COMM_WORLD`` (None in a world of size 1); ``nccl`` holds one NCCL
    communicator per CUDA device, made on first use (:mod:`.nccl`).
    """

    def __init__(self, backend: str, rank: int = 0, size: int = 1, local_rank: int = 0, mpi: Any = None) -> None:
        self.backend = backend
        self.rank = rank
        self.size = size
        self.local_rank = local_rank
        self.mpi = mpi
        self.nccl: dict[str, Any] = {}  # device -> NCCL communicator

    def __repr__(self) -> str:
        return f"World(backend={self.backend!r}, rank={self.rank}, size={self.size}, local_rank={self.local_rank})"


_WORLD: World | None = None
_SINGLE = World("none")  # what the queries report before init(): one process


def init(backend: str = "auto") -> World:
    """Join the job's ranks (a world of size 1 without a launcher); idempotent.

    ``backend``: ``"auto"`` (MPI for CPU arrays, NCCL for CUDA arrays), ``"mpi"`` (MPI for both;
    CUDA arrays go through host memory) or ``"nccl"`` (as ``"auto"``, and CUDA collectives must use
    NCCL).  Returns the :class:`World`.
    """
    global _WORLD
    if backend not in BACKENDS:
        raise ValueError(f"distributed.init: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if _WORLD is not None:
        return _WORLD
    size = launched_world_size()
    if size <= 1 and backend == "auto":
        _WORLD = World("none")
        return _WORLD
    MPI = _import_mpi(backend)
    if not MPI.Is_initialized():
        MPI.Init()
    comm = MPI.COMM_WORLD
    _check_launcher_agrees(comm.Get_size())
    node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())  # the ranks on this machine
    local_rank = node.Get_rank()
    node.Free()
    _WORLD = World(backend, comm.Get_rank(), comm.Get_size(), local_rank, comm)
    if _WORLD.size > 1:
        install_except_hook()
    return _WORLD


def check_initialized(what: str) -> None:
    """One line when this process is one of several launched ranks but :func:`init` has not run yet.

    Without it, a wrapper or a sampler built before ``init()`` would see a world of 1 on every rank:
    no broadcast of the weights, every rank on the whole data set, and no error until the results.
    """
    claim = _mpiexec_claim()
    if _WORLD is None and claim is not None and claim[1] > 1:
        raise RuntimeError(
            f"{what}: this process is one of {claim[1]} launched ranks but distributed.init() has not been called: "
            "call it first, before building the model's wrapper and the samplers"
        )


def current_world() -> World:
    """The current world (:func:`init`'s; a world of size 1 before it)."""
    return _WORLD if _WORLD is not None else _SINGLE


def is_initialized() -> bool:
    return _WORLD is not None


def get_rank() -> int:
    """This process's rank, 0..world_size-1 (0 before :func:`init`)."""
    return current_world().rank


def get_world_size() -> int:
    """The number of ranks (1 before :func:`init` and without a launcher)."""
    return current_world().size


def get_local_rank() -> int:
    """This rank's index among the ranks on its machine: the GPU it should use there."""
    return current_world().local_rank


def is_main_process() -> bool:
    """True on rank 0, the one that prints and writes files."""
    return current_world().rank == 0


def device_for_rank(device: str) -> str:
    """The device this rank should use: ``"cuda"`` becomes ``"cuda:<local rank>"``; others stay as given."""
    if device == "cuda" and get_world_size() > 1:
        return f"cuda:{get_local_rank()}"
    return device


def barrier() -> None:
    """Wait until every rank has reached this call."""
    w = current_world()
    if w.mpi is not None and w.size > 1:
        w.mpi.Barrier()


def abort(code: int = 1) -> None:
    """End every rank of the job now (``MPI_Abort``); in a world of size 1, exit this process."""
    w = current_world()
    for comm in w.nccl.values():
        try:
            comm.abort()
        except Exception:  # noqa: BLE001  (aborting anyway)
            pass
    if w.mpi is not None and w.size > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        w.mpi.Abort(code)
    raise SystemExit(code)


def finalize() -> None:
    """Leave the world: NCCL communicators destroyed, MPI finalized (call it once, at the end).

    MPI cannot start again in the same process, so after this :func:`init` works only without a launcher.
    """
    global _WORLD
    w = _WORLD
    _WORLD = None
    if w is None:
        return
    for comm in w.nccl.values():
        comm.destroy()
    w.nccl.clear()
    uninstall_except_hook()
    if w.mpi is not None:
        from mpi4py import MPI

        if MPI.Is_initialized() and not MPI.Is_finalized():
            MPI.Finalize()


# ---------------------------------------------------------------------------- the except hook
_previous_hook: Any = None
ABORT_GRACE_SECONDS = 0.25


def _abort_on_exception(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    """``sys.excepthook`` of a multi-rank job: report the error, then abort every rank."""
    if _previous_hook is not None:
        _previous_hook(exc_type, exc, tb)
    else:
        traceback.print_exception(exc_type, exc, tb)
    rank, size = get_rank(), get_world_size()
    print(f"distributed: rank {rank} of {size} failed ({exc_type.__name__}); aborting all ranks", file=sys.stderr)
    sys.stderr.flush()
    # a moment for mpiexec to pass the lines on: the abort tears the job down, and MPICH's launcher
    # dropped what it had not forwarded yet (seen once in CI: the traceback came through, this line did not)
    time.sleep(ABORT_GRACE_SECONDS)
    abort(1)


def install_except_hook() -> None:
    """Make an unhandled exception on any rank abort the whole job (no rank left waiting in a collective)."""
    global _previous_hook
    if sys.excepthook is not _abort_on_exception:
        _previous_hook = sys.excepthook
        sys.excepthook = _abort_on_exception


def uninstall_except_hook() -> None:
    global _previous_hook
    if sys.excepthook is _abort_on_exception:
        sys.excepthook = _previous_hook or sys.__excepthook__
    _previous_hook = None
