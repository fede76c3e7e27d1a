"""Every CPU core for a convolution: a small thread pool over ranges of the batch.

BLAS can run one matrix product on all cores, but the copies that build and scatter
the row matrices (:func:`~minitorch_nndl.kernels.arrays.im2row`,
:func:`~minitorch_nndl.kernels.arrays.row2im`, Winograd's tile transforms) are single
NumPy calls, and one NumPy call runs on one core.  NumPy releases Python's global
interpreter lock inside copies, ufunc loops and matrix products, so splitting the
batch into one contiguous range per core and running the ranges in threads really
does use all the cores.  A convolution hands each thread its range of images (rows,
GEMMs and scatter for those images); a call made inside a range runs unsplit.

:func:`for_batch_ranges` is the one entry point: ``fn(start, stop)`` is called on
disjoint ranges covering ``range(n)``, the last one in the calling thread, and it
returns when all are done (an exception in any range is raised in the caller).
CuPy arrays never go through the pool: GPU kernels are asynchronous already, and a
thread would have to enter the right device first.

What the threads share is the GIL itself: a NumPy call takes it to start and to return,
so two threads making many short calls mostly wait for each other.  Measured on 2 cores
(``np.add`` into a preallocated array, each thread its own arrays): at 32k elements per
call (2.3 us) two threads did twice the work in twice the time of one, no gain at all; at
128k they reached 0.85 of the ideal, at 512k 0.96.  So the parallel code here makes few,
large calls: Winograd's transforms run over all four tile rows in one call, elementwise
passes under ``MIN_SPLIT_ELEMENTS`` are not split, and optimizers update blocks of 128k
elements.  Not every NumPy call lets go of the GIL: NumPy 2.4's matmul of a vector and a
matrix keeps it (two threads' ``ones @ rows`` sums ran 0.86-0.92x as fast as one thread's),
``np.dot`` of the same lets go (1.46x), so batch norm's channel sums use ``np.dot``.  And on
a virtual machine a hand-off costs more: there a lock passed between two threads and back
took 69 us, and a loop of Winograd chunks (about 17 NumPy calls of 5-350 us each, 2 images a
chunk) ran at 0.55-0.75 of the ideal on two threads while two processes running the same
loop reached 1.0; at batch 32 that, not the cores, is what is left between ours and PyTorch.
For the whole ResNet18 evaluation at batch 32 (interleaved runs): one thread with 16 images
84.5 ms, two processes with 16 each side by side 91.5 (0.92: they share the memory bus, whose
31-35 GB/s one core already fills), two threads with 32 images 110 (0.77).  The threads lose
about 4 ms to Python between the convolutions (run by the caller alone, three times slower
than the same code with warm caches), about 2.6 ms to hand-offs (26 calls of this function;
waking a thread costs tens of microseconds here) and the rest to about 250 waits for the GIL
per forward (``perf stat``: 277 context switches a forward with two threads, under 1 with one).
Measured and dropped: both threads running the whole network on half the batch (no hand-offs,
but the Python of every layer then competes for the GIL: 5% slower), epilogues per thread
range instead of per chunk, a 50 us switch interval (no change beyond the noise).  Evaluation, where nothing
is summed over the batch, goes around the lock instead: :class:`~minitorch_nndl.nn.ProcessReplicas`
forks the model once per core and gives each process a share of the batch.

How many threads: the environment variable ``MINITORCH_NUM_THREADS`` or
:func:`set_num_threads`; 1 turns the pool off.  By default the pool is used only when
NumPy's BLAS runs single-threaded (``OPENBLAS_NUM_THREADS=1``): a multi-threaded
OpenBLAS keeps its worker threads spinning for a while after every GEMM, and a thread
of ours started then has to share a core with a spinning one (measured: an im2row
split over 2 threads right after a GEMM took 9.2 ms instead of 3.1 ms on one thread;
with a single-threaded BLAS the split took 2.3 ms instead of 2.9 ms).
:func:`use_batch_threads` is the explicit opt-in to that setting from inside a script.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

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


def blas_kernels() -> str | None:
    """The kernel family OpenBLAS chose for this CPU at load time (``"SkylakeX"``, ``"Haswell"``,
    ``"Zen"``), or None when NumPy's BLAS is not an OpenBLAS that says."""
    corename = openblas_call("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename")
    if corename is None:
        return None
    import ctypes  # noqa: PLC0415

    corename.restype = ctypes.c_char_p
    return corename().decode()


AVX512_KERNELS = ("SKYLAKEX", "COOPERLAKE", "SAPPHIRERAPIDS")
"""OpenBLAS's kernel families that use AVX-512."""


def cpu_has_avx512() -> bool:
    """Whether this CPU has AVX-512 (Linux: its flags in /proc/cpuinfo; elsewhere False)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return any(line.startswith("flags") and " avx512f" in line for line in cpuinfo)
    except OSError:
        return False


def forced_kernels_note() -> str | None:
    """A sentence when the environment variable ``OPENBLAS_CORETYPE`` makes OpenBLAS use kernels
    without AVX-512 on a CPU that has it, else None.  Some machines set it (this project's
    do, to Haswell); measured there, ResNet18 trained about 1.4x faster without it."""
    forced = os.environ.get("OPENBLAS_CORETYPE", "")
    kernels = blas_kernels()
    if not forced or kernels is None or kernels.upper() in AVX512_KERNELS or not cpu_has_avx512():
        return None
    return (
        f"OPENBLAS_CORETYPE={forced} makes NumPy's OpenBLAS use its {kernels} kernels on a CPU with AVX-512; "
        f"unset it (env -u OPENBLAS_CORETYPE python3 ...) for faster matrix products"
    )


def use_batch_threads(threads: int | None = None) -> bool:
    """Opt in to splitting each convolution's batch over ``threads`` threads (default: one
    per CPU), each building its rows and running its GEMMs on a single-threaded BLAS.

    Every copy and GEMM of a convolution then runs on all cores, with no BLAS worker
    threads spinning between calls (ResNet18 train step at batch 64 on 2 cores: 1.6-1.9 s
    of CPU time instead of 2.3-2.5 s with a 2-thread BLAS, for about 10% more memory).
    This sets OpenBLAS to one thread for the whole process, NumPy's other matrix
    products included, so the library never does it on its own: a script opts in.
    Returns False, changing nothing, when NumPy's BLAS is not an OpenBLAS it can set.
    """
    setter = openblas_call(
        "scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads"
    )
    if setter is None:
        return False
    setter(1)
    set_num_threads(threads or os.cpu_count() or 1)
    return True


def _default_threads() -> int:
    chosen = os.environ.get("MINITORCH_NUM_THREADS", "")
    if chosen.isdigit() and int(chosen) >= 1:
        return int(chosen)
    return (os.cpu_count() or 1) if blas_threads() == 1 else 1


_num_threads: int = _default_threads()


class _Workers:
    """``count`` daemon threads, each waiting on its own queue for one share at a time.

    Leaner than ``concurrent.futures.ThreadPoolExecutor``: handing out a share is one ``put`` on a
    C-implemented ``queue.SimpleQueue`` and collecting it one ``get``, with no ``Future`` and no
    condition variable; a worker runs a few lines of Python between shares.  That Python holds the
    GIL, which the other threads need at the end of every NumPy call, so less of it is faster.
    Measured on 2 cores of a virtual machine, where waking a sleeping thread alone takes tens of
    microseconds: an empty ``for_batch_ranges`` took 57-71 us here against 72-92 us with the
    executor (three alternating runs), and ResNet18's evaluation at batch 32 ran 1.5% faster."""

    def __init__(self, count: int) -> None:
        self.inboxes: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(count)]
        self.finished: queue.SimpleQueue = queue.SimpleQueue()
        self.busy = threading.Lock()  # held by the call the workers serve
        self.call = 0  # numbers each call, so an interrupted one's late answers are told apart
        for inbox in self.inboxes:
            threading.Thread(target=self._serve, args=(inbox,), name="minitorch", daemon=True).start()

    def _serve(self, inbox: queue.SimpleQueue) -> None:
        while (share := inbox.get()) is not None:
            call, *work = share
            try:
                _share(*work)
                self.finished.put((call, None))
            except BaseException as error:  # re-raised in the caller
                self.finished.put((call, error))

    def run(self, fn: Callable[[int, int], Any], ranges: list[tuple[int, int]], errors: dict[str, str]) -> None:
        """``fn`` on ``ranges``: the last in this thread, the others on the workers; waits for all.
        While another thread's call has the workers, this one runs unsplit in its own thread."""
        if not self.busy.acquire(blocking=False):
            _share(fn, ranges[0][0], ranges[-1][1], errors)
            return
        try:
            self.call += 1
            *others, mine = ranges
            for inbox, (start, stop) in zip(self.inboxes, others):
                inbox.put((self.call, fn, start, stop, errors))
            failure: BaseException | None = None
            try:
                _share(fn, *mine, errors)
            except BaseException as error:
                failure = error
            waiting = len(others)  # every worker is waited for, even after an error, before buffers are reused
            while waiting:
                call, error = self.finished.get()
                if call == self.call:  # not a late answer of a call that Ctrl-C interrupted
                    waiting -= 1
                    failure = failure or error
            if failure is not None:
                raise failure
        finally:
            self.busy.release()

    def stop(self) -> None:
        for inbox in self.inboxes:
            inbox.put(None)


_workers: _Workers | None = None


def _forget_workers() -> None:  # a forked child has none of the parent's threads: it starts its own
    global _workers
    _workers = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


def num_threads() -> int:
    """How many threads :func:`for_batch_ranges` splits work over (1: no pool, or inside :func:`single_threaded`)."""
    return 1 if getattr(_state, "alone", False) else _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (>= 1) for the batch-parallel copies from now on."""
    global _num_threads, _workers
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    if _workers is not None and n != _num_threads:
        _workers.stop()
        _workers = None
    _num_threads = n


def _pool() -> _Workers:
    global _workers
    if _workers is None:
        _workers = _Workers(_num_threads - 1)
    return _workers


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """``range(n)`` as at most ``parts`` contiguous (start, stop) ranges of nearly equal length."""
    parts = max(1, min(parts, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


_state = threading.local()  # .busy: this thread's calls run unsplit (a share, single_threaded()); .alone: the latter


MIN_SPLIT_ELEMENTS = 1 << 20
"""Elementwise passes over fewer elements than this run in one call (``min_elements``):
handing a range to a thread costs tens of microseconds, and two threads making NumPy calls
of a few hundred thousand elements each mostly wait for each other's turn at Python's
global interpreter lock.  Measured on 2 cores (ResNet18 shapes, batch 32): batch norm's
forward + backward and ReLU's over 262,144 values took 0.51 ms in one call and 0.84 ms
split; over 2,097,152 values split won, 4.4 against 6.0 ms."""


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Inside, this thread's calls run unsplit and :func:`num_threads` is 1, so layers plan for one
    thread: for a process that shares the cores with others already (one of
    :class:`~minitorch_nndl.nn.ProcessReplicas`)."""
    before = getattr(_state, "busy", False), getattr(_state, "alone", False)
    _state.busy = _state.alone = True
    try:
        yield
    finally:
        _state.busy, _state.alone = before


def _runs_inline(parts: int, array: Any) -> bool:
    """Whether work of ``parts`` pieces runs in the calling thread: one piece, one thread, a call
    from inside a share or :func:`single_threaded` (the cores are busy already) or CuPy work
    (asynchronous on the GPU)."""
    nested = getattr(_state, "busy", False)
    return parts <= 1 or _num_threads == 1 or nested or (array is not None and backend.is_cuda_array(array))


def for_batch_ranges(fn: Callable[[int, int], Any], n: int, array: Any = None, min_elements: int = 0) -> None:
    """Call ``fn(start, stop)`` on disjoint ranges covering ``range(n)``, one per thread.

    ``array`` (any array the work touches) tells NumPy work, which is split over the
    threads, from CuPy work, which runs as one call ``fn(0, n)``; so does an ``array`` of
    fewer than ``min_elements`` elements.  A call made from inside a share (a
    convolution's chunk calling im2row) runs as one call too: the threads are already
    busy.  Every share runs under the caller's NumPy error state (``np.errstate`` is per
    thread: a caller that ignores overflow expects its ranges to).
    """
    if _runs_inline(n, array) or (array is not None and array.size < min_elements):
        fn(0, n)
        return
    _pool().run(fn, split(n, _num_threads), np.geterr())  # an exception in any range is raised here


def for_each_chunk(fn: Callable[[int, int], Any], n: int, chunk: int, array: Any = None) -> None:
    """Call ``fn(start, stop)`` on the chunks (0, chunk), (chunk, 2 * chunk), ... of ``range(n)``, the
    threads taking them in order, each the next one left when it has finished its last.

    For work with no sum across chunks (a convolution's forward): the chunks are the same whatever
    the threads, and which thread ran one changes nothing in its result.  What it changes is who
    waits: with one fixed range per thread, the thread on the busier core (the host's other work
    slows one of the two by 10-20% for seconds at a time) finished up to 9 ms of a ResNet18
    evaluation later than the other, which waited.  One thread, CuPy arrays and nested calls run
    the chunks in order in the calling thread, as :func:`for_batch_ranges` would.
    """
    chunk = max(1, chunk)
    count = -(-n // chunk)
    if _runs_inline(count, array):
        for start in range(0, n, chunk):
            fn(start, min(n, start + chunk))
        return
    claims = itertools.count()  # next() on it is one step under the GIL: no two threads get the same chunk

    def take_chunks(_first: int, _last: int) -> None:
        while (k := next(claims)) < count:
            fn(k * chunk, min(n, k * chunk + chunk))

    for_batch_ranges(take_chunks, min(_num_threads, count))  # one taker per thread


def sum_over_batch_ranges(fn: Callable[[int, int], Any], n: int, array: Any = None, min_elements: int = 0) -> Any:
    """The sum of ``fn(start, stop)`` over the ranges of :func:`for_batch_ranges`, added in
    range order (so the result does not depend on which thread finished first), in place
    into the first range's result (``fn`` returns a fresh array, or a scalar)."""
    parts: dict[int, Any] = {}

    def run(start: int, stop: int) -> None:
        parts[start] = fn(start, stop)

    for_batch_ranges(run, n, array, min_elements)
    ordered = [parts[start] for start in sorted(parts)]
    total = ordered[0]
    for part in ordered[1:]:
        if getattr(total, "ndim", 0) > 0:
            backend.xp_of(total).add(total, part, out=total)
        else:
            total = total + part
    return total


def _share(fn: Callable[[int, int], Any], start: int, stop: int, errors: dict[str, str]) -> None:
    before = getattr(_state, "busy", False)
    _state.busy = True
    try:
        with np.errstate(**errors):
            fn(start, stop)
    finally:
        _state.busy = before


__all__ = [
    "AVX512_KERNELS",
    "MIN_SPLIT_ELEMENTS",
    "blas_kernels",
    "blas_threads",
    "cpu_has_avx512",
    "forced_kernels_note",
    "openblas",
    "openblas_call",
    "use_batch_threads",
    "for_batch_ranges",
    "for_each_chunk",
    "num_threads",
    "set_num_threads",
    "single_threaded",
    "split",
    "sum_over_batch_ranges",
]
