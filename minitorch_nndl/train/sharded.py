"""What changes in the loop when it runs on several ranks (data parallelism), in one place.

Every rank runs the same ``Trainer.fit``; they must take the same decisions at the same step,
or one of them would wait forever in a collective the others never call.  So:

* **the loss** a rank logs and checks for NaN is the mean over all ranks (:func:`global_mean`):
  every rank sees the same number, stops at the same step, and the history is the global batch's;
* **Ctrl-C** reaches the ranks at slightly different times; :func:`agree` turns "this rank was
  asked to stop" into "some rank was", once per step, so all stop after the same step;
* **evaluation** runs on each rank's shard (a ``DistributedSampler(..., shuffle=False, pad=False)``
  sees every sample once) and :func:`all_reduce_metrics` sums the counts: the accuracy is that
  of the whole dev set, identical on every rank;
* **the epoch's training numbers** are summed the same way (:func:`global_meter_state`);
* **only rank 0** (:func:`is_main`) prints, draws the progress bar and writes files (history,
  checkpoints); every rank can resume from the checkpoint it wrote.

In a world of size 1 every function here returns its input: the single-process loop is unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..distributed import collectives, world
from .metrics import Metric

__all__ = ["is_main", "world_size", "global_mean", "agree", "all_reduce_metrics", "global_meter_state"]


is_main = world.is_main_process  # True on rank 0 (and in a single process): the rank that prints and writes


def world_size() -> int:
    return world.get_world_size()


def global_mean(value: Any) -> Any:
    """The mean over the ranks of a device scalar (a new array; ``value`` itself when alone)."""
    if world.get_world_size() == 1:
        return value
    return collectives.all_reduce(backend.copy(value), "mean")


def agree(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank (one tiny all-reduce; no-op alone)."""
    if world.get_world_size() == 1:
        return flag
    return bool(collectives.all_reduce(np.array([int(flag)], dtype=np.int64), "max")[0])


def _reduced(value: Any, like: Any) -> Any:
    """The sum over the ranks of one entry of a metric's state (a number, a bool, an array or None)."""
    if isinstance(value, (bool, np.bool_)):
        return agree(bool(value))
    if value is None:
        value = np.zeros_like(like) if like is not None else None
    array = np.array(value, dtype=np.float64 if isinstance(value, float) else np.int64)
    collectives.all_reduce(array, "sum")
    return array.item() if array.ndim == 0 else array


def _reduce_state(state: dict[str, Any], zero_like: dict[str, Any]) -> dict[str, Any]:
    return {k: _reduced(v, zero_like.get(k)) for k, v in state.items()}


def all_reduce_metrics(metrics: dict[str, Metric], device: str) -> None:
    """Sum every metric's counts over the ranks, in place (they then compute the whole set's value)."""
    if world.get_world_size() == 1:
        return
    for name, m in metrics.items():
        try:
            state = m.state_dict()
        except NotImplementedError:
            raise TypeError(
                f"Trainer.evaluate on {world.get_world_size()} ranks: metric {name!r} ({type(m).__name__}) has no "
                "state_dict(), so its counts cannot be summed over the ranks"
            ) from None
        # A confusion matrix that saw no sample is None: every rank must still send the same shape.
        num_classes = getattr(m, "num_classes", None)
        zero_like = {"matrix": np.zeros((num_classes, num_classes), np.int64)} if num_classes else {}
        m.load_state_dict(_reduce_state(state, zero_like), device)


def global_meter_state(meter_state: dict[str, Any]) -> dict[str, Any]:
    """The epoch meter's counts summed over the ranks (seconds: the slowest rank's)."""
    if world.get_world_size() == 1:
        return meter_state
    out = {k: v for k, v in meter_state.items() if k != "epoch_seconds"}
    out = _reduce_state(out, {})
    seconds = np.array([meter_state.get("epoch_seconds", 0.0)])
    out["epoch_seconds"] = float(collectives.all_reduce(seconds, "max")[0])
    return out
