"""``DistributedSampler``: each rank its own shard of the data set, reshuffled every epoch.

All ranks draw the *same* permutation of ``0..N-1`` from ``(seed, epoch)``, then rank ``r`` takes
every ``p``-th index starting at ``r``.  The shards are disjoint and together they are the whole
permutation.  For training every rank must run the same number of steps (each step ends in an
all-reduce), so when ``p`` does not divide ``N`` the permutation is padded with its own first
indices to a multiple of ``p`` (a few samples count twice per epoch, as in PyTorch), or, with
``drop_last=True``, cut to one.  For evaluation pass ``pad=False``: the shards then differ in
length by at most one and every sample is seen exactly once, so counts all-reduced over the ranks
give the exact accuracy over the whole set (the Trainer does this).

Give it to the :class:`~minitorch_nndl.data.DataLoader` as ``sampler=``; the loader calls
:meth:`DistributedSampler.set_epoch` with its own epoch at the start of each pass, so a resumed
run sees the same shards as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["DistributedSampler"]


class DistributedSampler:
    """The indices of this rank's shard of ``dataset`` for the current epoch.

    Args:
        dataset: anything with ``len()``.
        num_replicas, rank: the world size and this rank (default: from
            :mod:`minitorch_nndl.distributed`; a world of size 1 before ``init()``).
        shuffle: a permutation seeded by ``(seed, epoch)``, the same on every rank; else ``0..N-1``.
        seed: the shuffling seed (every rank must use the same).
        drop_last: cut the data to a multiple of ``num_replicas`` instead of padding it.
        pad: ``False`` for evaluation: no padding, no dropping; shards may differ in length by one.
    """

    def __init__(
        self,
        dataset: Any,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        pad: bool = True,
    ) -> None:
        if num_replicas is None or rank is None:
            from ..distributed import world

            world.check_initialized("DistributedSampler")
            num_replicas = world.get_world_size() if num_replicas is None else num_replicas
            rank = world.get_rank() if rank is None else rank
        if int(num_replicas) != num_replicas or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive integer, got {num_replicas!r}")
        if int(rank) != rank or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in 0..{num_replicas - 1}, got {rank!r}")
        if int(seed) != seed or seed < 0:
            raise ValueError(f"DistributedSampler: seed must be a non-negative integer, got {seed!r}")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.pad = bool(pad)
        self.epoch = 0

    def _total(self) -> int:
        """How many indices all shards hold together."""
        n, p = len(self.dataset), self.num_replicas
        if not self.pad:
            return n
        return (n // p) * p if self.drop_last else -(-n // p) * p

    def __len__(self) -> int:
        """The length of this rank's shard."""
        total, p = self._total(), self.num_replicas
        return total // p + (1 if self.rank < total % p else 0)

    def set_epoch(self, epoch: int) -> None:
        """Shuffle for ``epoch`` (the same on every rank); call it before each epoch, or let the DataLoader."""
        if int(epoch) != epoch or epoch < 0:
            raise ValueError(f"DistributedSampler.set_epoch: epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def indices(self, epoch: int | None = None) -> np.ndarray:
        """This rank's shard for ``epoch`` (default: the one :meth:`set_epoch` chose), as an int64 array."""
        epoch = self.epoch if epoch is None else epoch
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
        total = self._total()
        if total > n:  # pad with the permutation's own first indices (repeated if the data is tiny)
            order = np.resize(order, total)
        return order[:total][self.rank :: self.num_replicas].astype(np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __repr__(self) -> str:
        return (
            f"DistributedSampler(n={len(self.dataset)}, rank={self.rank}/{self.num_replicas}, shuffle={self.shuffle}, "
            f"seed={self.seed}, drop_last={self.drop_last}, pad={self.pad})"
        )
