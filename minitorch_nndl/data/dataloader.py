"""``DataLoader``: turns a dataset into a stream of ready-to-train batches.

One epoch = one pass over the dataset in batches of ``batch_size``.  For each batch the
loader

1. takes the next ``batch_size`` indices of the epoch's order (a seeded permutation when
   ``shuffle=True``, different every epoch, identical for the same seed and epoch; with a
   ``sampler``, the indices it gives for the epoch, e.g. this rank's shard from a
   :class:`~minitorch_nndl.data.DistributedSampler`);
2. gathers the samples -- with one array-indexing call (``dataset.get_batch(indices)``)
   when the dataset is array-backed, else by stacking ``dataset[i]`` for each index;
3. applies ``transform`` to the whole batch of inputs, on the CPU, with a NumPy
   generator derived from ``(seed, epoch, batch number)`` -- so augmentation is
   reproducible, and a batch's randomness does not depend on which thread made it;
4. converts: uint8 images (N,H,W,C) become float32 (N,C,H,W) in [0, 1] if the transform
   has not already done so, integer labels become int64;
5. copies the arrays to ``device`` and yields minitorch Tensors ``(x, y)``.

With ``prefetch=N`` steps 1-5 run in a background thread that keeps up to ``N`` batches
ready while the model trains on the current one (NumPy releases the GIL in its copy and
arithmetic loops, so the work overlaps).  ``num_workers=W`` uses ``W`` such threads.
The threads stop when the epoch ends, when the iterator is dropped (``break`` out of the
loop), or when a batch raises (the exception reaches the training loop).

On ``device="cuda"`` with prefetch, the worker thread also does the host->device copy:
it stages the batch in page-locked (pinned) host memory and issues the copy on its own
CUDA stream, then waits for that stream before handing the batch over, so the training
thread never waits on the copy.  The stream is a *blocking* stream, which the legacy
default stream (where the model's kernels run) synchronizes with, so a device buffer
recycled by CuPy's memory pool is never overwritten while a kernel still reads it.  When
the training thread runs on another stream (CuPy's per-thread default stream, or a
``with stream:`` block) that ordering does not hold, so the worker leaves the copy to the
training thread, which does a plain ``cupy.asarray`` (CuPy only; NumPy needs no copy).

Resuming: ``state_dict()`` records the seed, the epoch and how many batches of it were
already consumed; ``load_state_dict()`` makes the next iteration continue with exactly
the batches (order and augmentation) an uninterrupted run would have seen.
"""

from __future__ import annotations

import inspect
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor
from .dataset import as_index_array, collate
from .transforms import images_to_float

__all__ = ["DataLoader"]

_SHUFFLE_STREAM, _TRANSFORM_STREAM = 0, 1


def _accepts_rng(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` can be called as ``fn(x, rng=...)`` (all library transforms can)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return any(p.name == "rng" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class DataLoader:
    """Iterate over ``dataset`` in (optionally shuffled and augmented) batches.

    Args:
        dataset: a :class:`~minitorch_nndl.data.Dataset` or any object with ``__len__`` and
            ``__getitem__``; ``get_batch(indices)`` is used when present.
        batch_size: samples per batch.
        shuffle: a fresh seeded permutation each epoch.
        drop_last: drop the final incomplete batch (``len(loader) = N // batch_size``
            instead of ``ceil(N / batch_size)``).
        seed: seed of the shuffling and augmentation randomness; ``None`` draws one from the
            library's CPU generator (so ``mt.manual_seed`` makes runs reproducible).
        transform: called as ``transform(x_batch, rng=generator)`` on the host NumPy batch of
            inputs (see :mod:`minitorch_nndl.data.transforms`); a function without an ``rng``
            parameter is called as ``transform(x_batch)``.
        device: where the yielded tensors live (``"cpu"``, ``"cuda"``, ``"cuda:N"``).
        prefetch: batches prepared ahead in background threads (0 = prepare in the loop).
        num_workers: background threads (default 1 when ``prefetch > 0``); ``num_workers > 0``
            with ``prefetch=0`` prefetches ``2 * num_workers`` batches.
        sampler: where the epoch's indices come from instead of ``shuffle`` (an iterable of
            indices with ``len()``; with ``set_epoch``, the loader calls it with its own epoch
            before each pass, so resuming gives the same order).  A sampler with
            ``num_replicas > 1`` (a :class:`~minitorch_nndl.data.DistributedSampler`) also gives
            each rank its own augmentation randomness.

    Yields tuples of Tensors, ``(x, y)`` for ``(input, label)`` datasets: ``x`` float32
    (N, C, H, W) for image datasets, ``y`` int64.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        transform: Callable[..., Any] | None = None,
        device: Any = "cpu",
        prefetch: int = 0,
        num_workers: int = 0,
        sampler: Any = None,
    ) -> None:
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: dataset must define __len__ and __getitem__, got {type(dataset).__name__}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: give shuffle=True or a sampler, not both (the sampler does the shuffling)")
        if sampler is not None and not hasattr(sampler, "__len__"):
            raise TypeError(f"DataLoader: sampler must define __len__ and __iter__, got {type(sampler).__name__}")
        if prefetch < 0 or num_workers < 0:
            raise ValueError(f"DataLoader: prefetch and num_workers must be >= 0, got {prefetch}, {num_workers}")
        if seed is None:
            seed = int(backend.rng_for("cpu").integers(0, 2**31 - 1))
        if int(seed) != seed or seed < 0:
            raise ValueError(f"DataLoader: seed must be a non-negative integer, got {seed!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.sampler = sampler
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.transform = transform
        self._transform_takes_rng = transform is not None and _accepts_rng(transform)
        self.device = backend.normalize_device(device)
        self.num_workers = int(num_workers)
        self.prefetch = int(prefetch) if prefetch > 0 else 2 * self.num_workers
        self.epoch = 0  # the epoch the next iteration will run
        self._resume_batch = 0  # batches of that epoch already consumed (after load_state_dict)
        self._active: list[int] | None = None  # [epoch, batches yielded] of the iteration in progress
        self._cuda_local = threading.local()  # one copy stream per worker thread

    # ------------------------------------------------------------------ sizes and order
    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration run epoch ``epoch`` (its shuffle order and augmentations)."""
        if int(epoch) != epoch or epoch < 0:
            raise ValueError(f"DataLoader.set_epoch: epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)
        self._resume_batch = 0

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The order of ``epoch``: the sampler's indices, a permutation seeded by ``(seed, epoch)``, or 0..N-1."""
        if self.sampler is not None:
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(epoch)
            indices = getattr(self.sampler, "indices", None)  # DistributedSampler's, as one array
            return np.asarray(indices() if callable(indices) else list(self.sampler), dtype=np.int64)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch, _SHUFFLE_STREAM]).permutation(n)

    def batch_rng(self, epoch: int, batch: int) -> np.random.Generator:
        """The generator the transform gets for batch ``batch`` of ``epoch`` (and of this rank, when sharded)."""
        if getattr(self.sampler, "num_replicas", 1) > 1:
            return np.random.default_rng([self.seed, epoch, _TRANSFORM_STREAM, batch, self.sampler.rank])
        return np.random.default_rng([self.seed, epoch, _TRANSFORM_STREAM, batch])

    # ------------------------------------------------------------------ resuming
    def state_dict(self) -> dict[str, int]:
        """``{"seed", "epoch", "batch_index"}``: where a resumed run must continue."""
        if self._active is not None and self._active[1] < len(self):
            epoch, done = self._active
        else:
            epoch, done = self.epoch, self._resume_batch
        return {"seed": self.seed, "epoch": int(epoch), "batch_index": int(done)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = {"seed", "epoch"} - set(state)
        if missing:
            raise KeyError(f"DataLoader.load_state_dict: missing keys {sorted(missing)}")
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self._resume_batch = int(state.get("batch_index", 0))
        if not 0 <= self._resume_batch <= len(self):
            raise ValueError(f"DataLoader.load_state_dict: batch_index {self._resume_batch} outside 0..{len(self)}")
        self._active = None

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[Any]:
        epoch, start = self.epoch, self._resume_batch
        self.epoch, self._resume_batch = epoch + 1, 0
        return _LoaderIterator(self, epoch, start)

    def _batch_indices(self, order: np.ndarray, batch: int) -> np.ndarray:
        return order[batch * self.batch_size : (batch + 1) * self.batch_size]

    def _gather(self, idx: np.ndarray) -> Any:
        getter = getattr(self.dataset, "get_batch", None)
        if getter is not None:
            return getter(idx)
        idx = as_index_array(idx, len(self.dataset), "DataLoader")
        return collate([self.dataset[int(i)] for i in idx])

    def make_batch(self, epoch: int, batch: int, order: np.ndarray | None = None) -> Any:
        """Build batch ``batch`` of ``epoch`` (gather, transform, convert, copy to the device)."""
        fields, single = self._host_batch(epoch, batch, order)
        return self._deliver(self._to_device(fields), single)

    def _host_batch(self, epoch: int, batch: int, order: np.ndarray | None) -> tuple[list[Any], bool]:
        """Gather, transform and convert one batch; arrays stay where the dataset keeps them (host)."""
        if order is None:
            order = self.epoch_order(epoch)
        fields = self._gather(self._batch_indices(order, batch))
        single = not isinstance(fields, tuple)
        fields = [fields] if single else list(fields)
        x = fields[0]
        if self.transform is not None:
            if self._transform_takes_rng:
                x = self.transform(backend.to_numpy(x), rng=self.batch_rng(epoch, batch))
            else:  # a plain function of the batch (its randomness, if any, is its own business)
                x = self.transform(backend.to_numpy(x))
            if isinstance(x, Tensor):  # ToTensor (and the transforms after it) return host Tensors
                x = x.data
        if getattr(x, "dtype", None) == np.uint8:
            x = images_to_float(x)
        fields[0] = x
        for k in range(1, len(fields)):
            f = fields[k] if hasattr(fields[k], "dtype") else np.asarray(fields[k])
            fields[k] = f.astype(np.int64) if f.dtype.kind in "iu" and f.dtype != np.int64 else f
        return fields, single

    @staticmethod
    def _deliver(arrays: list[Any], single: bool) -> Any:
        tensors = [Tensor._wrap(a) for a in arrays]
        return tensors[0] if single else tuple(tensors)

    def _to_device(self, arrays: list[Any]) -> list[Any]:
        """Plain copies to the loader's device (in the calling thread)."""
        if self.device == "cpu":
            return [backend.to_numpy(a) for a in arrays]
        return [backend.to_device(a, self.device) for a in arrays]

    def _worker_batch(self, epoch: int, batch: int, order: np.ndarray, copy: bool) -> tuple[list[Any], bool]:
        """What a prefetch thread does: the host batch, copied to the GPU here when ``copy``."""
        fields, single = self._host_batch(epoch, batch, order)
        if self.device == "cpu":
            return self._to_device(fields), single
        return (self._pinned_copy(fields) if copy else fields), single

    def _worker_can_copy(self) -> bool:
        """True when the consumer thread computes on CuPy's legacy default stream.

        The worker's copy stream is a blocking stream, which the legacy default stream is
        ordered against; with per-thread default streams or a user stream that ordering is
        not guaranteed, so the copy is left to the consumer thread instead.
        """
        if self.device == "cpu":
            return False
        cp = backend.xp_for(self.device)
        with backend.device_context(self.device):
            return int(cp.cuda.get_current_stream().ptr) == 0

    def _pinned_copy(self, arrays: list[Any]) -> list[Any]:
        """Host->device copies from pinned memory on this worker thread's own stream (CuPy only)."""
        cp = backend.xp_for(self.device)
        with backend.device_context(self.device):
            stream = getattr(self._cuda_local, "stream", None)
            if stream is None:
                stream = cp.cuda.Stream(non_blocking=False)  # blocking: ordered against the default stream
                self._cuda_local.stream = stream
            out, staging = [], []
            for a in arrays:
                if backend.is_cuda_array(a):
                    out.append(a)
                    continue
                a = np.ascontiguousarray(a)
                mem = cp.cuda.alloc_pinned_memory(max(a.nbytes, 1))
                pinned = np.frombuffer(mem, a.dtype, a.size).reshape(a.shape)
                pinned[...] = a
                # Allocated while this thread's current stream is the default one, so the pool
                # associates the buffer with the default stream the model uses.
                d = cp.empty(a.shape, dtype=a.dtype)
                d.set(pinned, stream=stream)
                out.append(d)
                staging.append(mem)
            stream.synchronize()  # the batch is on the device before anyone can see it
            del staging
        return out

    def __repr__(self) -> str:
        return (
            f"DataLoader(n={len(self.dataset)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, seed={self.seed}, device={self.device!r}, prefetch={self.prefetch})"
        )


class _LoaderIterator:
    """One epoch's iterator; owns the prefetch threads and stops them in :meth:`close`."""

    def __init__(self, loader: DataLoader, epoch: int, start: int) -> None:
        self.pool: ThreadPoolExecutor | None = None
        self.pending: deque[Future] = deque()
        self.loader = loader
        self.epoch = epoch
        self.order = loader.epoch_order(epoch)
        self.total = len(loader)
        self.next_yield = start
        self.next_submit = start
        self.progress = [epoch, start]  # shared with the loader for state_dict()
        loader._active = self.progress
        self.copy = False  # whether prefetch threads also do the host->device copy
        if loader.prefetch > 0 and start < self.total:
            self.copy = loader._worker_can_copy()
            self.pool = ThreadPoolExecutor(max_workers=max(1, loader.num_workers), thread_name_prefix="minitorch-data")
            self._fill()

    def _fill(self) -> None:
        assert self.pool is not None
        while len(self.pending) < self.loader.prefetch and self.next_submit < self.total:
            job = self.pool.submit(self.loader._worker_batch, self.epoch, self.next_submit, self.order, self.copy)
            self.pending.append(job)
            self.next_submit += 1

    def __iter__(self) -> _LoaderIterator:
        return self

    def __len__(self) -> int:
        return self.total - self.next_yield

    def __next__(self) -> Any:
        if self.next_yield >= self.total:
            self.close()
            raise StopIteration
        try:
            if self.pool is not None:
                arrays, single = self.pending.popleft().result()
                self._fill()
                if self.loader.device != "cpu" and not self.copy:
                    arrays = self.loader._to_device(arrays)
                batch = self.loader._deliver(arrays, single)
            else:
                batch = self.loader.make_batch(self.epoch, self.next_yield, self.order)
        except BaseException:
            self.close()
            raise
        self.next_yield += 1
        self.progress[1] = self.next_yield
        return batch

    def close(self) -> None:
        """Stop the background threads (pending batches are cancelled, a running one finishes)."""
        if self.loader._active is self.progress:  # an abandoned epoch is over: the loader moves on
            self.loader._active = None
        pool, self.pool = self.pool, None
        if pool is not None:
            for fut in self.pending:
                fut.cancel()
            self.pending.clear()
            pool.shutdown(wait=True, cancel_futures=True)

    def __del__(self) -> None:
        if hasattr(self, "progress"):
            self.close()
