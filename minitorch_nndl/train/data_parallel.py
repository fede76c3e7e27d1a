"""A training program run data-parallel: what ``--distributed`` changes, outside the training loop.

``mpiexec -n 4 python3 examples/resnet18_cifar10.py --distributed --device cuda`` starts four copies
of the program; with ``--distributed`` each of them

* joins the others (:func:`setup`: :func:`minitorch_nndl.distributed.init`), takes the GPU of its
  local rank (``cuda:<local rank>``; on the CPU every rank is a process of its own), and -- for a new
  run whose recipe ties the learning rate to the batch -- scales the learning rate with the global
  batch (the linear scaling rule: ``--batch-size`` is per rank, the global batch ``p`` times it);
* trains a copy of the model wrapped by :func:`wrap` (SyncBatchNorm, then DistributedDataParallel);
* reads its own shard of the data (:func:`sampler`): a reshuffled padded shard to train on, an
  exact one (every image once over all ranks) to evaluate;
* writes into the run folder rank 0 chose and prepared (:func:`one_folder`), so every rank agrees
  on it whatever the file system shows each of them, and an ``--overwrite`` deletes once;
* is quiet unless it is rank 0 (its stdout goes to ``os.devnull``; errors still reach stderr), and
  the run's files are written by rank 0 only (the Trainer and :mod:`.runs` check :func:`is_main`);
* ends the whole job when it fails alone (:func:`exit_status`), so no rank waits forever for one that quit.

Without a launcher (or without ``--distributed``) all of this leaves the program as it was.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import distributed as dist
from ..data import DistributedSampler
from ..nn import Module, SyncBatchNorm
from .sharded import is_main

__all__ = ["setup", "wrap", "sampler", "one_folder", "exit_status", "is_main"]


def setup(cfg: dict[str, Any], scale_lr: bool) -> str:
    """Join the job when ``cfg["distributed"]``; set this rank's device and the scaled lr in ``cfg``.

    ``scale_lr``: the lr in ``cfg`` is the recipe's for the per-rank batch (a new run without
    ``--lr``).  Returns the banner's line about the ranks ("" when not distributed).
    """
    if not cfg.get("distributed"):
        return ""
    w = dist.init()
    if cfg["device"] != "cpu":
        cfg["device"] = f"cuda:{w.local_rank}"  # one GPU per rank, by its place on its machine
    if w.rank != 0:
        sys.stdout = open(os.devnull, "w")  # for the life of the process
    per_rank, world = cfg["batch_size"], w.size
    scaled = scale_lr and cfg.get("optimizer", "sgd") == "sgd" and cfg.get("recipe") == "default"
    if scaled and world > 1:
        before, cfg["lr"] = cfg["lr"], cfg["lr"] * world
        lr_note = f"lr {cfg['lr']:g} = {before:g} x {world} ranks (linear scaling with the global batch)"
    else:
        lr_note = f"lr {cfg['lr']:g} as set (not scaled: {'one rank' if world == 1 else 'given or resumed'})"
    where = "on the GPU of its local rank" if cfg["device"] != "cpu" else "a process on the CPU"
    return (
        f"{world} rank{'s' if world > 1 else ''} x batch {per_rank} = global batch {world * per_rank}, "
        f"each rank {where}; {lr_note}"
    )


def wrap(model: Module, cfg: dict[str, Any]) -> Module:
    """``model`` ready for data-parallel training (SyncBatchNorm + DistributedDataParallel), or as it is."""
    if not cfg.get("distributed"):
        return model
    return dist.DistributedDataParallel(SyncBatchNorm.convert_sync_batchnorm(model))


def sampler(dataset: Any, cfg: dict[str, Any], train: bool) -> DistributedSampler | None:
    """This rank's shard of ``dataset``: shuffled and padded to train on, exact (``pad=False``) to evaluate."""
    if not cfg.get("distributed"):
        return None
    if train:
        return DistributedSampler(dataset, shuffle=True, seed=cfg["seed"])
    return DistributedSampler(dataset, shuffle=False, pad=False)


def one_folder(choose: Callable[[], tuple[Path, str]], prepare: Callable[[Path], None]) -> tuple[Path, str]:
    """The run folder and its banner note, ``choose()``-n and ``prepare()``-d by rank 0, the same on every rank.

    Every rank calls ``choose()`` first (it only checks the file system, so a folder that cannot be
    used is the same one-line error on every rank); rank 0's choice is then broadcast (a path and a
    note: two short strings), rank 0 alone prepares it, and the barrier after that means no rank
    goes on before the folder exists.  Without several ranks: ``choose()``, then ``prepare()``.
    """
    folder, note = choose()
    w = dist.current_world()
    if w.size == 1 or w.mpi is None:
        prepare(folder)
        return folder, note
    folder, note = w.mpi.bcast((str(folder), note), root=0)  # strings, not arrays: pickling is fine here
    folder = Path(folder)
    if w.rank == 0:
        prepare(folder)
    dist.barrier()
    return folder, note


def exit_status(code: int, wait_seconds: float = 30.0) -> int:
    """The program's exit status, once the job can end without leaving a rank behind.

    A failure (``code != 0``) in a job of several ranks waits up to ``wait_seconds`` for every rank
    to reach this point too (a non-blocking barrier: the ranks agree on Ctrl-C and on a NaN stop, so
    they get here together and each exits normally, rank 0's checkpoint written); a rank that does
    not come is stuck in a collective the failed rank will never join, so the whole job is aborted.
    """
    w = dist.current_world()
    if code == 0 or w.size == 1 or w.mpi is None:
        return code
    arrived = w.mpi.Ibarrier()
    deadline = time.monotonic() + wait_seconds
    while not arrived.Test():
        if time.monotonic() > deadline:
            print(f"rank {w.rank}: exit status {code}; the other ranks did not finish: ending the job", file=sys.stderr)
            dist.abort(code)
        time.sleep(0.05)
    return code
