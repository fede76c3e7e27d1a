"""What a person sees of a run: the epoch's running numbers, the progress bar, the summary lines.

* :class:`EpochMeter` -- the epoch being trained: sample-weighted loss and accuracy (counted on
  the device, see :mod:`.metrics`), images and seconds; it saves and restores itself, so an
  epoch interrupted in its middle and resumed reports the numbers of all of its samples;
* :class:`Progress` -- one tqdm bar per epoch on stderr, with a postfix updated at log points;
* :func:`epoch_summary` -- the one line printed (to stdout) per epoch, epoch numbered from 1
  as in the history files.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .history import History
from .metrics import Accuracy, MeanMetric

__all__ = ["EpochMeter", "Progress", "epoch_summary", "fmt_rate"]


def fmt_rate(x: float) -> str:
    """Images per second, to a useful precision (``12,345`` or ``12.3``)."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


class EpochMeter:
    """Loss, accuracy, images and time of the epoch being trained (no host sync until read)."""

    def __init__(self) -> None:
        self.loss = MeanMetric()
        self.acc = Accuracy()
        self.images = 0
        self._t0 = 0.0
        self._carried = 0.0  # seconds the epoch had run before a resume

    def start(self, carry_on: bool = False) -> None:
        """Start the epoch's clock: from zero, or (``carry_on``) from the numbers :meth:`load_state_dict` gave."""
        if not carry_on:
            self.clear()
        self._t0 = time.perf_counter() - self._carried

    def clear(self) -> None:
        """Forget everything (the epoch has ended)."""
        self.loss.reset()
        self.acc.reset()
        self.images = 0
        self._t0 = self._carried = 0.0

    def update(self, loss: Any, logits: Any, targets: Any, n: int) -> None:
        self.images += n
        self.loss.update(loss, n)
        self.acc.update(logits, targets)

    def seconds(self) -> float:
        return time.perf_counter() - self._t0 if self._t0 else 0.0

    def row(self, epoch: int, steps: int, lr: float) -> dict[str, Any]:
        """The epoch's history row so far: epoch (from 1), steps, train loss/accuracy, lr, time, throughput."""
        seconds = self.seconds()
        return {
            "epoch": epoch,
            "steps": steps,
            "train_loss": self.loss.compute(),
            "train_acc": self.acc.compute(),
            "lr": lr,
            "seconds": seconds,
            "images_per_sec": self.images / max(seconds, 1e-9),
        }

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's names for these numbers (part of its ``trainer`` entry)."""
        loss, acc = self.loss.state_dict(), self.acc.state_dict()
        return {
            "train_loss_sum": loss["sum"],
            "train_loss_count": loss["count"],
            "train_correct": acc["correct"],
            "train_total": acc["total"],
            "epoch_seconds": self.seconds(),
            "epoch_images": self.images,
        }

    def load_state_dict(self, state: dict[str, Any], device: str = "cpu") -> None:
        """Continue an epoch from :meth:`state_dict`'s numbers; the clock restarts at :meth:`start`."""
        self.loss.load_state_dict(
            {"sum": state.get("train_loss_sum", 0.0), "count": state.get("train_loss_count", 0)}, device
        )
        self.acc.load_state_dict(
            {"correct": state.get("train_correct", 0), "total": state.get("train_total", 0)}, device
        )
        self.images = int(state.get("epoch_images", 0))
        self._carried = float(state.get("epoch_seconds", 0.0))


class Progress:
    """The progress bar of one epoch (tqdm, on stderr) and the lines printed while it shows.

    ``enabled=False`` (the ranks other than 0 of a data-parallel run) shows and prints nothing.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.bar: Any = None
        self.enabled = enabled

    @contextmanager
    def epoch(self, total: int | None, initial: int, desc: str, enabled: bool = True) -> Iterator[Progress]:
        """Show a bar for the block (none when ``enabled`` is false); it closes however the block ends."""
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr)
        try:
            yield self
        finally:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def postfix(self, history: History, epoch: int, meter: EpochMeter, lr: float) -> None:
        """Recent loss, epoch accuracy, lr and throughput on the bar (call at log points: it reads the device)."""
        if self.bar is None:
            return
        recent = [r["loss"] for r in history.steps[-50:] if r["epoch"] == epoch]
        elapsed = max(meter.seconds(), 1e-9)
        self.bar.set_postfix(
            loss=f"{np.mean(recent):.4f}" if recent else "-",
            acc=f"{100 * meter.acc.compute():.2f}%" if meter.acc.total else "-",
            lr=f"{lr:.4g}",
            img_s=fmt_rate(meter.images / elapsed),
            refresh=False,
        )

    def print(self, text: str) -> None:
        """A line on stdout that does not break the bar."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)


def epoch_summary(row: dict[str, Any], improved: bool, monitor: Any = ()) -> str:
    """``epoch   3 | train loss ... | dev loss ... acc ... * | test acc ... | lr ... | 12.3s (456 img/s)``.

    ``*`` marks a dev accuracy that improved (``best.npz`` was updated); ``monitor`` names
    the extra loaders whose accuracy the row holds.
    """
    parts = [
        f"epoch {row['epoch']:>3}",
        f"train loss {row['train_loss']:.4f} acc {100 * row['train_acc']:6.2f}%",
    ]
    if "dev_acc" in row:
        parts.append(f"dev loss {row['dev_loss']:.4f} acc {100 * row['dev_acc']:6.2f}%{' *' if improved else ''}")
    for name in monitor:
        if f"{name}_acc" in row:
            parts.append(f"{name} acc {100 * row[f'{name}_acc']:6.2f}%")
    parts.append(f"lr {row['lr']:.4g}")
    parts.append(f"{row['seconds']:.1f}s ({fmt_rate(row['images_per_sec'])} img/s)")
    return " | ".join(parts)
