"""Where a run stands: the one object a checkpoint needs to continue a run exactly.

A :class:`Position` is the epoch, the batch inside it, the optimizer step, and what it takes
to get the randomness and the data back to that point: the generators' states (the library's
CPU generator and NumPy's global one) at the start of the epoch and after the last completed
step, and the training loader's state at the start of the epoch.

Resuming (:meth:`Position.from_checkpoint`, then :meth:`Position.start_epoch`) goes back to the
start of the interrupted epoch and forward to its batch:

1. the generators are set as they were when the epoch began, and the loader is given its
   state from then;
2. a loader whose state has a ``batch_index`` (our :class:`~minitorch_nndl.data.DataLoader`,
   whose order and augmentation derive from ``(seed, epoch, batch)``) continues directly at the
   saved batch; any other loader with ``state_dict``/``set_epoch`` is replayed to it (its
   batches are read again, not trained on);
3. the generators are set as they were after the last completed step.

On the CPU an interrupted and resumed run therefore reaches bit-identical weights to an
uninterrupted one, at epoch boundaries and in the middle of an epoch -- provided the loader's
randomness lives in the loader's own generator or in the library's global generator, and no
prefetch thread draws random numbers concurrently.  On a GPU the CuPy generator's state is not
saved, so a resumed GPU run is statistically, not bitwise, the same.

The checkpoint layout is unchanged from earlier versions: ``trainer`` (epoch, batch_in_epoch,
global_step), ``rng`` (epoch_start, now) and ``loader`` (epoch_start).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import backend

__all__ = ["Position", "PositionField", "rng_state", "set_rng_state", "loader_state"]


def rng_state() -> dict[str, Any]:
    """The state of the library's CPU generator and of NumPy's global generator."""
    return {"minitorch_cpu": backend.get_rng_state(), "numpy_global": np.random.get_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    """Put back a state from :func:`rng_state` (one without ``numpy_global`` leaves NumPy's alone)."""
    backend.set_rng_state(state["minitorch_cpu"])
    numpy_global = state.get("numpy_global")
    if numpy_global is not None:
        np.random.set_state(tuple(numpy_global))


def loader_state(loader: Any) -> Any:
    """``loader.state_dict()`` when the loader has one, else ``None``."""
    fn = getattr(loader, "state_dict", None)
    return fn() if callable(fn) else None


@dataclass
class Position:
    """The run's position; it captures itself as training goes and restores itself on resume."""

    epoch: int = 0  # completed epochs (the epoch being trained is number epoch + 1)
    batch_in_epoch: int = 0  # batches completed in the current epoch
    global_step: int = 0  # optimizer steps completed
    rng_epoch_start: dict[str, Any] | None = None  # the generators when the current epoch began
    rng_after_step: dict[str, Any] | None = None  # the generators after the last completed step
    loader_epoch_start: Any = None  # the training loader's state when the current epoch began
    loader_next_epoch: Any = None  # its state once the epoch's batches were all read
    resuming: bool = False  # read from a checkpoint: the next epoch continues where it stopped

    # ---------------------------------------------------------------- as training goes
    def start_epoch(self, loader: Any) -> Iterator[Any]:
        """Point the loader and the generators at this position; an iterator over the epoch's remaining batches."""
        resuming, self.resuming = self.resuming, False
        if not resuming:
            self.batch_in_epoch = 0
        elif self.rng_epoch_start is not None:
            set_rng_state(self.rng_epoch_start)
        jumped = resuming and self._restore_loader(loader)
        if not jumped:
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(self.epoch)
            self.loader_epoch_start = loader_state(loader)
        saved_after_step = self.rng_after_step
        self.rng_epoch_start = self.rng_after_step = rng_state()
        batches = iter(loader)
        if not jumped:
            for _ in range(self.batch_in_epoch):  # replay the loader to the saved batch (no training)
                next(batches)
        if resuming and saved_after_step is not None:
            set_rng_state(saved_after_step)
            self.rng_after_step = rng_state()
        return batches

    def _restore_loader(self, loader: Any) -> bool:
        """Give the loader its state from the start of the epoch; True when it then starts at the saved batch itself."""
        state = self.loader_epoch_start
        if state is None or not hasattr(loader, "load_state_dict"):
            return False
        if isinstance(state, dict) and "batch_index" in state:
            loader.load_state_dict({**state, "batch_index": self.batch_in_epoch})
            return True
        loader.load_state_dict(state)
        return False

    def step_done(self) -> None:
        """One optimizer step completed."""
        self.global_step += 1
        self.batch_in_epoch += 1
        self.rng_after_step = rng_state()

    def batches_done(self, loader: Any) -> None:
        """The epoch's batches are all read: remember where the loader's next epoch starts."""
        self.loader_next_epoch = loader_state(loader)

    def end_epoch(self) -> None:
        """The epoch is complete: the position is now the start of the next one."""
        self.epoch += 1
        self.batch_in_epoch = 0
        self.rng_epoch_start = self.rng_after_step = rng_state()
        self.loader_epoch_start = self.loader_next_epoch

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self, rng_now: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The checkpoint's ``trainer``, ``rng`` and ``loader`` parts; ``rng_now``: the generators to resume with."""
        return {
            "trainer": {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "global_step": self.global_step},
            "rng": {"epoch_start": self.rng_epoch_start, "now": rng_now},
            "loader": {"epoch_start": self.loader_epoch_start},
        }

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any]) -> Position:
        """The position a checkpoint (a :func:`~minitorch_nndl.train.load_checkpoint` dict) holds, ready to resume."""
        t, rng = checkpoint.get("trainer", {}), checkpoint.get("rng", {})
        return cls(
            epoch=int(t.get("epoch", 0)),
            batch_in_epoch=int(t.get("batch_in_epoch", 0)),
            global_step=int(t.get("global_step", 0)),
            rng_epoch_start=rng.get("epoch_start"),
            rng_after_step=rng.get("now"),
            loader_epoch_start=checkpoint.get("loader", {}).get("epoch_start"),
            resuming=True,
        )


class PositionField:
    """``trainer.epoch`` and its kin: a field of ``trainer.position`` under the Trainer's name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else getattr(obj.position, self.name)

    def __set__(self, obj: Any, value: int) -> None:
        setattr(obj.position, self.name, int(value))
