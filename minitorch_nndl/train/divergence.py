"""A diverging run stops with one clear message and never overwrites a good checkpoint.

* :class:`StepLosses` -- the per-step losses not yet read.  They stay device scalars until a
  log point, where they are stacked and copied in one transfer (on a GPU, reading a loss
  makes the host wait for all queued work); the first non-finite one is reported.
* :class:`NonFiniteLossError` -- what the loop raises on a NaN/inf loss (training or
  evaluation); ``Trainer.fit`` turns it into ``status="nan"``.  The message names the step
  (1-based count of optimizer steps) and the epoch, says where the last good checkpoint is,
  and suggests the usual fix (a lower learning rate).
* :func:`params_finite` -- checked before every checkpoint is written: one device reduction
  over all parameters and buffers, one sync.

On the CPU the Trainer reads every loss at once (free there) and stops before a NaN step
touches the weights; on a GPU :mod:`.last_good` keeps the model from before the first NaN
step without a host sync.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import backend

__all__ = ["NonFiniteLossError", "StepLosses", "params_finite", "divergence_advice", "nan_loss_message"]


class NonFiniteLossError(RuntimeError):
    """Raised inside the loop when a loss is NaN/inf; ``fit`` turns it into ``status="nan"``."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


class StepLosses:
    """Per-step losses waiting for the next log point: ``(step, epoch, loss array, lr)``."""

    def __init__(self) -> None:
        self.pending: list[tuple[int, int, Any, float]] = []

    def add(self, step: int, epoch: int, loss: Any, lr: float) -> None:
        self.pending.append((step, epoch, loss, lr))

    def drop_after(self, step: int) -> None:
        """Forget the losses of steps after ``step`` (a step that did not complete)."""
        self.pending = [p for p in self.pending if p[0] <= step]

    def clear(self) -> None:
        self.pending = []

    def read(self) -> tuple[list[dict[str, Any]], tuple[float, int, int] | None]:
        """One transfer: the history rows up to the first non-finite loss, and that loss's ``(value, step, epoch)``.

        The second item is ``None`` when every loss was finite.  Everything pending is consumed.
        """
        pending, self.pending = self.pending, []
        if not pending:
            return [], None
        arrays = [a for _, _, a, _ in pending]
        xp = backend.xp_of(arrays[0])
        values = backend.to_numpy(xp.stack(arrays).astype(np.float64))  # one copy of all pending losses
        rows = [{"step": s, "epoch": e, "loss": float(v), "lr": lr} for (s, e, _, lr), v in zip(pending, values)]
        bad = np.nonzero(~np.isfinite(values))[0]
        if not bad.size:
            return rows, None
        first = int(bad[0])
        step, epoch, _, _ = pending[first]
        return rows[:first], (float(values[first]), step, epoch)


def params_finite(model: Any) -> bool:
    """Whether every parameter and floating buffer is finite: one device reduction, one sync."""
    flags = [p.xp.isfinite(p.data).all() for p in model.parameters()]
    flags += [b.xp.isfinite(b.data).all() for b in model.buffers() if backend.is_floating(b.dtype)]
    if not flags:
        return True
    xp = backend.xp_of(flags[0])
    return bool(backend.to_numpy(xp.stack(flags).all()))


def divergence_advice(out_dir: Path | None, highest_lr: float) -> str:
    """Where the last good checkpoint is, and the usual cure."""
    where = ""
    if out_dir is not None and (out_dir / "last.npz").exists():
        where = f" The last good checkpoint is {out_dir / 'last.npz'}."
    elif out_dir is not None:
        where = " No checkpoint had been written yet."
    return (
        f"{where} The usual cause is a learning rate that is too high (the highest so far was {highest_lr:.3g}): "
        "try one 10x lower."
    )


def nan_loss_message(value: float, step: int, epoch: int, advice: str) -> str:
    return (
        f"non-finite loss ({value}) at step {step} (epoch {epoch}); training stopped, "
        f"no checkpoint was written from the diverged weights.{advice}"
    )
