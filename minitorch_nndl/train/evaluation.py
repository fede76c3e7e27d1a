"""Evaluate a classifier over a loader, or predict a batch: eval mode, no graph, one host sync.

Both restore the model's training mode afterwards, and both take data only on the model's
device (:func:`~minitorch_nndl.train.placement.on_device`).  On the CPU with the batch threads on
(``parallel.use_batch_threads()``, as the example's command line sets them), each batch is split
over forked copies of the model (:class:`~minitorch_nndl.nn.ProcessReplicas`), one per core, whose
Python runs without waiting for the other threads' turn at the interpreter lock.  ``Trainer.evaluate`` and
``Trainer.predict`` are these functions with the Trainer's model, loss and metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .. import backend
from ..grad_mode import inference_mode
from ..nn.replicas import ProcessReplicas
from ..tensor import Tensor
from . import sharded
from .metrics import Accuracy, MeanMetric, Metric
from .placement import on_device

__all__ = ["metrics_by_name", "evaluate", "predict"]


def metrics_by_name(metrics: dict[str, Metric] | Sequence[Metric] | None) -> dict[str, Metric]:
    """A dict name -> metric (a list is keyed by each metric's ``name``), always with an ``"acc"`` Accuracy."""
    if metrics is None:
        out: dict[str, Metric] = {}
    elif isinstance(metrics, dict):
        out = dict(metrics)
    else:
        out = {}
        for m in metrics:
            if m.name in out:
                raise ValueError(f"Trainer: two metrics are named {m.name!r}; pass a dict to name them")
            out[m.name] = m
    if "acc" not in out:
        out = {"acc": Accuracy(), **out}
    return out


@inference_mode()
def evaluate(
    model: Any, loader: Any, loss_fn: Callable[[Tensor, Tensor], Tensor], metrics: dict[str, Metric], device: str
) -> dict[str, Any]:
    """``{"loss": float, name: value, ...}`` over the whole loader (sample-weighted loss), in eval mode.

    Array-valued metrics (confusion matrix, per-class accuracy) come back as NumPy arrays.  On
    several ranks each evaluates its loader (its shard) and the counts are summed over the ranks,
    so every rank returns the numbers of the whole set.
    """
    was_training = getattr(model, "training", True)
    model.eval()
    loss_meter = MeanMetric()
    for m in metrics.values():
        m.reset()
    try:
        with ProcessReplicas(model) as forward:  # one process, model(x) itself, unless the batch threads are on
            for batch in loader:
                x, y = on_device(batch[0], device), on_device(batch[1], device, "batch's target")
                logits = forward(x)
                loss_meter.update(loss_fn(logits, y).data, int(x.shape[0]))
                for m in metrics.values():
                    m.update(logits.data, y.data)
    finally:
        model.train(was_training)
    sharded.all_reduce_metrics({"loss": loss_meter, **metrics}, device)
    result: dict[str, Any] = {"loss": loss_meter.compute()}
    for name, m in metrics.items():
        result[name] = m.compute()
    return result


@inference_mode()
def predict(model: Any, x: Any, device: str, probs: bool = False, batch_size: int | None = None) -> Tensor:
    """Logits (or softmax probabilities with ``probs=True``) for ``x``, in chunks of ``batch_size``, in eval mode."""
    was_training = getattr(model, "training", True)
    model.eval()
    try:
        x = on_device(x, device, "input")
        n = int(x.shape[0])
        step = batch_size or n or 1
        with ProcessReplicas(model) as forward:
            outs = [forward(x[i : i + step]).data for i in range(0, n, step)]
        out = outs[0] if len(outs) == 1 else backend.xp_of(outs[0]).concatenate(outs)
        t = Tensor._wrap(out)
        return t.softmax(axis=1) if probs else t
    finally:
        model.train(was_training)
